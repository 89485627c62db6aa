// Package archtest holds no code: its test keeps the import directions of ARCHITECTURE.md
// true. It lists every package of the module with the go tool and checks each package's
// direct imports (including those of its tests) against a table of rules: which
// third-party modules only one package may import, and which of our packages may not
// depend on which. Add a rule to the table in imports_test.go when a new boundary is
// drawn.
package archtest
