// Package rest is the REST gateway (fiber v2): it translates HTTP requests into db calls
// and db results and errors into JSON responses, nothing more. Routes, bodies and error
// codes are documented in docs/api.md; errors are mapped by gateway.Lookup.
//
// Limits: request bodies over Limits.MaxBodyBytes get 413 body_too_large; JSON nested
// deeper than Limits.MaxJSONDepth gets 400 json_too_deep; invalid JSON gets 400
// invalid_json. A rejected request writes nothing.
//
// Server owns its fiber app: Serve blocks until Shutdown, which stops accepting and waits
// for in-flight requests.
package rest
