package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTick = 10 * time.Millisecond

// procStat returns the command name and the user+system CPU time of pid,
// from /proc/<pid>/stat.
func procStat(pid string) (string, time.Duration, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return "", 0, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 13 {
		return "", 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return s[open+1 : end], time.Duration(ut+st) * clockTick, true
}

// cpuSnap is the CPU time used so far by the processes a run involves.
type cpuSnap struct {
	service, self, postgres time.Duration
	machine                 time.Duration // busy time of all CPUs (/proc/stat)
}

// machineBusy returns the non-idle CPU time of the whole machine so far.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * clockTick
}

// takeCPU reads the CPU time of the service process (pid 0: none), of
// this process (load generator, kfake broker and FerretDB run in it) and
// of every postgres process on the machine (the server is shared with
// anything else that uses it meanwhile).
func takeCPU(servicePid int) cpuSnap {
	var c cpuSnap
	if servicePid > 0 {
		_, c.service, _ = procStat(strconv.Itoa(servicePid))
	}
	_, c.self, _ = procStat(strconv.Itoa(os.Getpid()))
	c.machine = machineBusy()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		if name, t, ok := procStat(e.Name()); ok && name == "postgres" {
			c.postgres += t
		}
	}
	return c
}

// cpuPerOp is CPU milliseconds per operation of each process group.
type cpuPerOp struct{ service, self, postgres, machine float64 }

func (c cpuSnap) perOp(after cpuSnap, ops int) cpuPerOp {
	if ops == 0 {
		return cpuPerOp{}
	}
	f := func(d time.Duration) float64 { return ms(d) / float64(ops) }
	return cpuPerOp{service: f(after.service - c.service), self: f(after.self - c.self), postgres: f(after.postgres - c.postgres),
		machine: f(after.machine - c.machine)}
}
