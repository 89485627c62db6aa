// Package loopback gives tests addresses to listen on: every test server binds to a
// loopback address (127.0.0.1, or 127.0.0.x for the multi-process clusters), on a port
// below the kernel's ephemeral range. Only tests import it.
package loopback
