package sysmon

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNext(t *testing.T) {
	for _, c := range []struct {
		batch bool
		used  float64
		want  bool
	}{
		{false, 0.1, true},
		{false, 0.49, true},
		{false, 0.5, false},
		{false, 0.9, false},
		{true, 0.6, true}, // between the thresholds the policy stays
		{false, 0.6, false},
		{true, 0.7, true},
		{true, 0.71, false},
		{true, 1.5, false},
	} {
		if got := next(c.batch, c.used); got != c.want {
			t.Errorf("next(%v, %v) = %v, want %v", c.batch, c.used, got, c.want)
		}
	}
}

// TestMonitorThreadIsTheMonitor: the thread found is not one that runs
// goroutines (a goroutine locked to its thread learns that thread's id),
// and its policy goes to SCHED_BATCH and back.
func TestMonitorThreadIsTheMonitor(t *testing.T) {
	tid, err := monitorThread()
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan int)
	for range 8 {
		go func() {
			// Locked and never unlocked, so the thread ends with the
			// goroutine and the next one runs elsewhere.
			runtime.LockOSThread()
			seen <- unix.Gettid()
		}()
	}
	for range 8 {
		if got := <-seen; got == tid {
			t.Fatalf("thread %d runs goroutines: it is not the monitor", tid)
		}
	}
	// Under nice, the policy changes and the nice value stays: a switch
	// to nice 0 would be refused to an unprivileged process.
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, 3); err != nil {
		t.Fatal(err)
	}
	for _, batch := range []bool{true, false} {
		if err := setBatch(tid, batch); err != nil {
			t.Fatal(err)
		}
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := uint32(unix.SCHED_NORMAL)
		if batch {
			want = unix.SCHED_BATCH
		}
		if attr.Policy != want || attr.Nice != 3 {
			t.Fatalf("policy %d, nice %d after setBatch(%v), want %d and 3", attr.Policy, attr.Nice, batch, want)
		}
	}
}
