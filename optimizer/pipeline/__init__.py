"""One decision: forecast → problem → solve → explanation → typed decision document. Every caller (the CLI's
`solve`, the daemon and `tick`, what-ifs, the rolling backtest) goes through `pipeline.decide`."""
