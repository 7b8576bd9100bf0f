"""The operator console: one web page (and its JSON endpoints) showing what hashpivot decided, why, the feeds
and the fleet, read from the store only (never solving in a request). `state` gathers and summarises,
`chart` draws, `page` renders HTML, `app` is the Starlette application (auth, actions), `server` binds it."""
