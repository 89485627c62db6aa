// Package embedded starts a throwaway single aerolith node for `aerolith bench
// --embedded`: a fresh temporary data directory, loopback ports chosen by the kernel, and
// Close stops the node and removes the directory. It is kept apart from package bench so
// that bench itself drives servers only from outside, like a user.
//
// A Node is used from one goroutine; Close is idempotent.
package embedded
