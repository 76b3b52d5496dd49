//go:build !race

package e2e_test

// raceEnabled reports whether the tests run with the race detector; the
// service binaries are then built with it too (see buildServices).
const raceEnabled = false
