// Package sysmon keeps the Go runtime's monitor thread from taking the
// core from the threads it watches while the process has CPU to spare.
//
// The monitor (runtime.sysmon) polls every 20 µs once the process wakes
// from idle, and on a core it shares with the server's working thread
// each poll preempts that thread: on one core the room of 100 in
// docs/BENCHMARKS.md spent a tenth of its CPU on those switches. As
// SCHED_BATCH the monitor no longer preempts on waking and runs when the
// working thread blocks or its slice ends. A saturated server needs the
// monitor at once, though: it hands the P on while the writer waits for
// an fsync and preempts the fan-out for the writer afterwards, and late
// it starves the writer. So the monitor is SCHED_BATCH only while the
// process uses less than half of its CPUs, and normal again above 70 %.
package sysmon

import "time"

// Thresholds of the process's CPU use, as a fraction of GOMAXPROCS cores
// over one period, between which the policy stays as it is. The period is
// short because a saturated server builds a backlog while its monitor is
// late, and a saturated server never works one off.
const (
	batchBelow  = 0.5
	normalAbove = 0.7
	period      = 250 * time.Millisecond
)

// next is the policy after a period in which the process used used of its
// cores, batch being the policy during it.
func next(batch bool, used float64) bool {
	switch {
	case !batch && used < batchBelow:
		return true
	case batch && used > normalAbove:
		return false
	}
	return batch
}
