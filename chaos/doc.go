// Package chaos holds the fault-injection scenario runner of PropAlpes
// Companies (issue 5): the command chaosrun (cmd/chaosrun) and the test
// TestChaosShort, which runs its CI short form. See cmd/chaosrun for what it
// starts, the faults it injects and the invariants it checks.
package chaos
