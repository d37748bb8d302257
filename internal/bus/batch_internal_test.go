package bus

import (
	"bytes"
	"fmt"
	"testing"
)

// TestBatchesRoundTrip: what batches packs, splitBatch gives back in
// order, every message within the payload limit unless one item alone
// exceeds it, and a message of one item is that item unchanged.
func TestBatchesRoundTrip(t *testing.T) {
	item := func(i, size int) []byte {
		return append([]byte(fmt.Sprintf(`{"n":%d,"pad":"`, i)), append(bytes.Repeat([]byte("x"), size), `"}`...)...)
	}
	for _, tc := range []struct {
		name       string
		sizes      []int
		maxPayload int
		messages   int
	}{
		{"one item crosses as itself", []int{10}, 1 << 20, 1},
		{"small items share one message", []int{10, 20, 30, 40}, 1 << 20, 1},
		{"split at the payload limit", []int{400, 400, 400, 400, 400}, 1000, 3},
		{"an item alone above the limit goes alone", []int{10, 5000, 10}, 1000, 3},
		{"empty items", []int{0, 0, 0}, 1 << 20, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var items [][]byte
			for i, size := range tc.sizes {
				items = append(items, item(i, size))
			}
			out := batches(items, tc.maxPayload)
			if len(out) != tc.messages {
				t.Fatalf("%d messages, want %d", len(out), tc.messages)
			}
			var got [][]byte
			for _, m := range out {
				if m[0] != batchMark {
					got = append(got, m)
					continue
				}
				if len(m) > tc.maxPayload {
					t.Fatalf("a batch of %d bytes above the limit %d", len(m), tc.maxPayload)
				}
				parts, err := splitBatch(m)
				if err != nil {
					t.Fatal(err)
				}
				if len(parts) < 2 {
					t.Fatalf("a batch of %d item(s): one item should cross unchanged", len(parts))
				}
				got = append(got, parts...)
			}
			if len(got) != len(items) {
				t.Fatalf("%d items back, want %d", len(got), len(items))
			}
			for i := range items {
				if !bytes.Equal(got[i], items[i]) {
					t.Fatalf("item %d: %q, want %q", i, got[i], items[i])
				}
			}
		})
	}
}

// TestSplitBatchRefusesMalformed: a message cut short, a length past its
// end, or a batch of nothing is refused whole.
func TestSplitBatchRefusesMalformed(t *testing.T) {
	for _, data := range [][]byte{
		nil,
		{batchMark},
		{'{', '}'},
		{batchMark, 5, 'a', 'b'},
		{batchMark, 1, 'a', 3, 'b'},
		{batchMark, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01},
		{batchMark, 0x80},
	} {
		if items, err := splitBatch(data); err == nil {
			t.Errorf("%x: split into %q, want an error", data, items)
		}
	}
}

// FuzzSplitBatch: any bytes split without a panic, and what splits is the
// items that, packed again, give the same bytes.
func FuzzSplitBatch(f *testing.F) {
	f.Add([]byte{batchMark, 2, '{', '}', 2, '{', '}'})
	f.Add([]byte{batchMark, 0})
	f.Add([]byte{batchMark, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := splitBatch(data)
		if err != nil {
			return
		}
		if len(items) == 1 {
			return // one item travels unbatched; its batch form is not canonical
		}
		again := batches(items, 1<<30)
		if len(again) != 1 {
			t.Fatalf("%d items packed again into %d messages", len(items), len(again))
		}
		back, err := splitBatch(again[0])
		if err != nil || len(back) != len(items) {
			t.Fatalf("packed again: %d items, %v; want %d", len(back), err, len(items))
		}
		for i := range items {
			if !bytes.Equal(back[i], items[i]) {
				t.Fatalf("item %d changed: %q, want %q", i, back[i], items[i])
			}
		}
	})
}
