package load

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// ProcessCPU reads the CPU time a process has used so far, user and system,
// its exited threads included. It reads the process's CPU clock, which
// counts nanoseconds; /proc/PID/stat counts 10 ms ticks, a step of 3 % in a
// room of 100's ten-second run, and is the fallback where that clock cannot
// be read.
func ProcessCPU(pid int) (time.Duration, error) {
	if cpu, err := clockCPU(pid); err == nil {
		return cpu, nil
	}
	return statCPU(pid)
}

func statCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it are fixed.
	s := string(raw)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("load: odd /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("load: odd /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("load: odd /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}
