package load

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func ownCPU(t *testing.T) time.Duration {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// The reading must lie between two readings of the process's own clock
// taken around it: a 10 ms tick count falls short of the first.
func TestProcessCPUIsTheProcessClock(t *testing.T) {
	for range 20 {
		for x, end := 0, ownCPU(t)+time.Millisecond; ownCPU(t) < end; x++ {
			_ = x * x
		}
		before := ownCPU(t)
		got, err := ProcessCPU(os.Getpid())
		after := ownCPU(t)
		if err != nil {
			t.Fatal(err)
		}
		if got < before || got > after {
			t.Fatalf("ProcessCPU = %v, outside the process's own clock %v..%v", got, before, after)
		}
	}
}

// Another process's clock is read, not the ticks of the fallback.
func TestClockCPUOfAnotherProcess(t *testing.T) {
	if _, err := clockCPU(os.Getppid()); err != nil {
		t.Fatal(err)
	}
	const pastPidMax = 1<<22 + 1
	if _, err := ProcessCPU(pastPidMax); err == nil {
		t.Fatal("a pid that cannot exist read without error")
	}
}
