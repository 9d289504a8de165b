package ledger

import (
	"reflect"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/money"
)

func codecEntries() []journalEntry {
	dec := Decision{Admitted: true, Refused: -1, Remaining: []money.Micros{0, units(3), MaxAmount}}
	return []journalEntry{
		{ID: "req_1", At: t0.UnixNano(), Usage: Usage{Requests: 1, InputTokens: 500, CachedInputTokens: 20, OutputTokens: 200}, Decision: &dec,
			Holds: []holdRecord{
				{Account: recordAccount(prepaidAccount("wallet")), Amount: 1},
				{Account: recordAccount(budgetAccount("team", units(100), Window{Period: Month, Location: time.FixedZone("", 0)})), Amount: 0},
				{Account: recordAccount(budgetAccount("hour", MaxAmount, Window{Rolling: time.Hour})), Amount: int64(MaxAmount)},
			}},
		{Charge: true, ID: "c", At: -1, Holds: []holdRecord{{Account: recordAccount(prepaidAccount("w")), Amount: 7}}},
	}
}

func TestEmbeddedCodecRoundTrips(t *testing.T) {
	for _, en := range codecEntries() {
		got, err := decodeEntry(encodeEntry(nil, en))
		if err != nil || !reflect.DeepEqual(got, en) {
			t.Errorf("entry %q: got %+v, %v; want %+v", en.ID, got, err, en)
		}
		// Every truncation is an error, never a panic or a shorter entry.
		b := encodeEntry(nil, en)
		for n := range len(b) {
			if _, err := decodeEntry(b[:n]); err == nil {
				t.Errorf("entry %q cut at %d of %d bytes decoded", en.ID, n, len(b))
			}
		}
	}
	g := liveGrant{ID: "g", Amount: int64(MaxAmount), Used: 3, ExpiresMS: ms(t0)}
	if got, err := decodeGrant("g", encodeGrant(g)); err != nil || got != g {
		t.Errorf("grant: got %+v, %v; want %+v", got, err, g)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	for _, en := range codecEntries() {
		f.Add(encodeEntry(nil, en))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		en, err := decodeEntry(b)
		if err != nil {
			return
		}
		// What decodes survives a round trip (varints may come longer than
		// needed, so the bytes need not be the same).
		if again, err := decodeEntry(encodeEntry(nil, en)); err != nil || !reflect.DeepEqual(again, en) {
			t.Fatalf("%x decoded to %+v, which round-trips to %+v, %v", b, en, again, err)
		}
	})
}
