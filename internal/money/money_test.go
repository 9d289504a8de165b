package money

import (
	"errors"
	"math"
	"testing"
)

func TestParse(t *testing.T) {
	tests := map[string]struct {
		in   string
		want Micros
		err  bool
	}{
		"whole units":                 {in: "12", want: 12_000_000},
		"cents":                       {in: "12.50", want: 12_500_000},
		"six decimals":                {in: "0.000125", want: 125},
		"one decimal":                 {in: "0.5", want: 500_000},
		"zero":                        {in: "0", want: 0},
		"leading zeros":               {in: "007.1", want: 7_100_000},
		"seven decimals are refused":  {in: "0.0000001", err: true},
		"negative is refused":         {in: "-1", err: true},
		"empty is refused":            {in: "", err: true},
		"bare dot is refused":         {in: ".5", err: true},
		"trailing dot is refused":     {in: "5.", err: true},
		"exponent is refused":         {in: "1e3", err: true},
		"spaces are refused":          {in: " 1", err: true},
		"too large is refused":        {in: "9223372036854", err: true},
		"largest accepted":            {in: "9223372036853.999999", want: 9223372036853_999999},
		"two dots are refused":        {in: "1.2.3", err: true},
		"plus sign is refused":        {in: "+1", err: true},
		"non ascii digits is refused": {in: "١", err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.err {
				if err == nil {
					t.Fatalf("Parse(%q) = %d, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
	if _, err := Parse("x"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Parse(x) error %v does not wrap ErrInvalid", err)
	}
}

func TestString(t *testing.T) {
	tests := map[Micros]string{
		0:                 "0.00",
		1:                 "0.000001",
		125:               "0.000125",
		500_000:           "0.50",
		12_500_000:        "12.50",
		12_345_678:        "12.345678",
		-1_500_000:        "-1.50",
		math.MaxInt64:     "9223372036854.775807",
		math.MinInt64 + 1: "-9223372036854.775807",
		math.MinInt64:     "-9223372036854.775808",
	}
	for in, want := range tests {
		if got := in.String(); got != want {
			t.Errorf("Micros(%d).String() = %q, want %q", int64(in), got, want)
		}
	}
}

func TestParseStringRoundTrip(t *testing.T) {
	for _, s := range []string{"0.00", "0.000001", "12.50", "99.999999", "1000000.10"} {
		m, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if m.String() != s {
			t.Errorf("Parse(%q).String() = %q", s, m.String())
		}
	}
}

func TestPerMillion(t *testing.T) {
	tests := map[string]struct {
		tokens int64
		price  string
		want   Micros
	}{
		"exact":                         {tokens: 1_000_000, price: "2.50", want: 2_500_000},
		"fraction rounds up":            {tokens: 1, price: "0.15", want: 1},
		"hundred tokens":                {tokens: 100, price: "0.15", want: 15},
		"no tokens costs nothing":       {tokens: 0, price: "60", want: 0},
		"free model":                    {tokens: 12345, price: "0", want: 0},
		"huge counts do not overflow":   {tokens: math.MaxInt32, price: "1000000", want: Micros(int64(math.MaxInt32) * 1_000_000)},
		"saturates instead of wrapping": {tokens: math.MaxInt64, price: "1000000", want: math.MaxInt64},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := PerMillion(tc.tokens, MustParse(tc.price)); got != tc.want {
				t.Fatalf("PerMillion(%d, %s) = %d, want %d", tc.tokens, tc.price, got, tc.want)
			}
		})
	}
}

func TestAddPercent(t *testing.T) {
	if got := AddPercent(1_000_000, MustParse("20")); got != 1_200_000 {
		t.Fatalf("20%% on 1.00 = %d", got)
	}
	if got := AddPercent(1, MustParse("12.5")); got != 2 {
		t.Fatalf("12.5%% on one micro rounds up to 2, got %d", got)
	}
	if got := AddPercent(1_000_000, 0); got != 1_000_000 {
		t.Fatalf("0%% changed the amount: %d", got)
	}
}

func TestAtomicUnits(t *testing.T) {
	tests := []struct {
		m        Micros
		decimals int
		want     string
	}{
		{10_000, 6, "10000"},
		{10_000, 18, "10000000000000000"},
		{1, 2, "1"}, // a fraction of a cent is asked as a whole cent
		{1_000_000, 2, "100"},
		{0, 18, "0"},
		{1_500_000, 0, "2"},
	}
	for _, tc := range tests {
		got, err := AtomicUnits(tc.m, tc.decimals)
		if err != nil || got != tc.want {
			t.Errorf("AtomicUnits(%d, %d) = %q, %v; want %q", tc.m, tc.decimals, got, err, tc.want)
		}
	}
	if _, err := AtomicUnits(-1, 6); err == nil {
		t.Error("negative amount accepted")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "12.50", "0.000001", "9223372036853.999999", "1.", "-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(s)
		if err != nil {
			return
		}
		if m < 0 {
			t.Fatalf("Parse(%q) = %d is negative", s, m)
		}
		back, err := Parse(m.String())
		if err != nil || back != m {
			t.Fatalf("round trip of %q: %q -> %d, %v", s, m.String(), back, err)
		}
	})
}
