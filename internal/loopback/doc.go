// Package loopback gives tests addresses to listen on: every test server binds to
// 127.0.0.1. Only tests import it.
package loopback
