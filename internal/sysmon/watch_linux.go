package sysmon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Watch sets the monitor's policy once a period, from the process's CPU
// use, until ctx ends. When the monitor's thread cannot be told apart or
// its policy cannot be set (a sandbox without /proc, a seccomp filter) it
// logs why and leaves the monitor as it is.
func Watch(ctx context.Context, logger *slog.Logger) {
	tid, err := monitorThread()
	if err == nil {
		err = setBatch(tid, false) // a policy we may not set is found now, not in a period
	}
	if err != nil {
		logger.Info("runtime monitor left at its policy", slog.Any("err", err))
		return
	}
	go watch(ctx, logger, tid)
}

func watch(ctx context.Context, logger *slog.Logger, tid int) {
	t := time.NewTicker(period)
	defer t.Stop()
	batch := false
	last, lastAt := cpuTime(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, at := cpuTime(), time.Now()
		used := float64(now-last) / float64(at.Sub(lastAt)) / float64(runtime.GOMAXPROCS(0))
		last, lastAt = now, at
		if want := next(batch, used); want != batch {
			if err := setBatch(tid, want); err != nil {
				logger.Warn("runtime monitor: policy not set; left as it is", slog.Any("err", err))
				return
			}
			batch = want
		}
	}
}

// cpuTime is the CPU the process has used, user and system.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// setBatch makes tid SCHED_BATCH or normal again, at the nice value it
// has (iotad may run under nice). An unprivileged thread may switch
// between the two both ways at the same nice value, where it could raise
// its nice value but never lower it again.
func setBatch(tid int, batch bool) error {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return fmt.Errorf("sysmon: read thread %d's policy: %w", tid, err)
	}
	attr.Size = uint32(unsafe.Sizeof(unix.SchedAttr{}))
	attr.Policy = unix.SCHED_NORMAL
	if batch {
		attr.Policy = unix.SCHED_BATCH
	}
	if err := unix.SchedSetAttr(tid, attr, 0); err != nil {
		return fmt.Errorf("sysmon: set thread %d's policy: %w", tid, err)
	}
	return nil
}

// monitorThread finds the monitor's thread: the first the runtime creates
// (runtime.main starts it before anything else), so the first after the
// main thread in the kernel's cyclic order of thread ids. It is checked
// by where it waits: between its polls the monitor sleeps in nanosleep,
// or in a futex wait with a timeout, where an idle M waits without one.
func monitorThread() (int, error) {
	pid := os.Getpid()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, fmt.Errorf("sysmon: %w", err)
	}
	pidMax := 1 << 22 // the kernel's highest pid_max
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			pidMax = n
		}
	}
	first, after := 0, pidMax
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil || tid == pid {
			continue
		}
		if d := (tid - pid + pidMax) % pidMax; d < after {
			first, after = tid, d
		}
	}
	if first == 0 {
		return 0, errors.New("sysmon: the process has one thread")
	}
	// A thread caught between two waits reads "running"; the monitor
	// spends nearly all its time in them.
	for range 20 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/syscall", first))
		if err != nil {
			return 0, fmt.Errorf("sysmon: %w", err)
		}
		if f := strings.Fields(string(b)); len(f) > 4 {
			nr, _ := strconv.Atoi(f[0])
			if nr == unix.SYS_NANOSLEEP || (nr == unix.SYS_FUTEX && f[4] != "0x0") {
				return first, nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("sysmon: thread %d does not wait as the monitor does", first)
}
