// Package durable writes small files so that a crash leaves either the old content or
// the new one, never a torn or missing file: a temporary file in the same directory,
// fsync, rename over the target, fsync of the directory.
package durable
