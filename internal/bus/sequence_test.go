package bus

import (
	"errors"
	"slices"
	"testing"
)

// TestSequencer: items from several nodes arrive out of order, some lost;
// delivery is each number once, in order, the holes filled from the store.
func TestSequencer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		start    int64 // where Start puts the key (0: not started)
		arrive   []int64
		store    []int64 // what Backfill finds
		failFill bool
		want     []int64
	}{
		{"in order", 0, []int64{1, 2, 3}, nil, false, []int64{1, 2, 3}},
		{"started where the store stands", 6, []int64{7, 8}, nil, false, []int64{7, 8}},
		{"a later number first, after Start", 6, []int64{8, 7, 9}, []int64{7, 8, 9}, false, []int64{7, 8, 9}},
		{"a new key starts at 0", 0, []int64{2, 1, 3}, []int64{1, 2, 3}, false, []int64{1, 2, 3}},
		{"lost publish backfilled", 0, []int64{1, 2, 5, 6}, []int64{1, 2, 3, 4, 5, 6}, false, []int64{1, 2, 3, 4, 5, 6}},
		{"late arrival dropped", 0, []int64{1, 3, 2, 4}, []int64{1, 2, 3, 4}, false, []int64{1, 2, 3, 4}},
		{"repeat dropped", 0, []int64{1, 2, 2, 1, 3}, nil, false, []int64{1, 2, 3}},
		{"store without the hole skips it", 0, []int64{1, 4}, []int64{1, 4}, false, []int64{1, 4}},
		{"failed backfill skips the gap", 0, []int64{1, 4, 5}, nil, true, []int64{1, 4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Sequencer[int64]{
				Seq: func(n int64) int64 { return n },
				Backfill: func(key string, after, before int64) ([]int64, error) {
					if tc.failFill {
						return nil, errors.New("store down")
					}
					var out []int64
					for _, n := range tc.store {
						if n > after && n < before {
							out = append(out, n)
						}
					}
					return out, nil
				},
			}
			if tc.start != 0 {
				s.Start("ch", tc.start)
			}
			var got []int64
			for _, n := range tc.arrive {
				s.Next("ch", n, n, func(v int64) { got = append(got, v) })
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("delivered %v, want %v", got, tc.want)
			}
		})
	}
}
