// Package money holds amounts as int64 counts of micro-units (1/1,000,000 of
// a currency unit) and converts them to and from the decimal strings of the
// API. No float ever carries an amount.
package money

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Micros is an amount in millionths of a currency unit.
type Micros int64

// Scale is the number of micro-units in one unit.
const Scale = 1_000_000

// ErrInvalid is returned for strings that are not decimal amounts.
var ErrInvalid = errors.New("not a decimal amount with at most 6 decimals")

// Parse reads a non-negative decimal amount such as "12.50" or "0.000125".
func Parse(s string) (Micros, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && (frac == "" || len(frac) > 6)) || !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("%q: %w", s, ErrInvalid)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/Scale-1 {
		return 0, fmt.Errorf("%q: amount too large", s)
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	return Micros(w*Scale + f), nil
}

// MustParse is Parse for constants in code and tests; it panics on bad input.
func MustParse(s string) Micros {
	m, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return m
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// String formats the amount with at least two decimals and no trailing zeros
// beyond them: 12500000 -> "12.50", 125 -> "0.000125", -1500000 -> "-1.50".
func (m Micros) String() string {
	var b [32]byte
	return string(m.Append(b[:0]))
}

// Append appends String's form of m to b, allocating nothing else: it is
// written on every answer (its cost header).
func (m Micros) Append(b []byte) []byte {
	u := uint64(m)
	if m < 0 {
		b = append(b, '-')
		u = uint64(-m) // -MinInt64 wraps to itself, which is its magnitude as uint64
	}
	b = strconv.AppendUint(b, u/Scale, 10)
	b = append(b, '.')
	frac, digits := u%Scale, 6
	for digits > 2 && frac%10 == 0 { // at least two decimals, no trailing zeros
		frac /= 10
		digits--
	}
	for d := digits - 1; d >= 0; d-- {
		b = append(b, byte('0'+frac/pow10[d]%10))
	}
	return b
}

var pow10 = [...]uint64{1, 10, 100, 1000, 10000, 100000}

// MulDivCeil returns ceil(a*b/d) for non-negative a and b and positive d,
// computed in 128 bits so that token counts times prices cannot overflow.
// It saturates at MaxInt64.
func MulDivCeil(a, b, d int64) int64 {
	return CeilDiv(SumOfProducts([2]int64{a, b}), d)
}

// PerMillion is the cost of n tokens at a price per million tokens, rounded
// up to the next micro-unit so that metering never undercharges.
func PerMillion(tokens int64, pricePerMillion Micros) Micros {
	return Micros(MulDivCeil(tokens, int64(pricePerMillion), Scale))
}

// AddPercent raises m by a percentage given in micro-percent (12.5% is
// 12_500_000), rounding up.
func AddPercent(m Micros, percent Micros) Micros {
	return Micros(MulDivCeil(int64(m), 100*Scale+int64(percent), 100*Scale))
}

// AtomicUnits converts an amount to the atomic units of a token with the
// given decimals (USDC has 6: one micro-unit is one atomic unit), as a decimal
// string because 18-decimal tokens exceed int64.
func AtomicUnits(m Micros, decimals int) (string, error) {
	if m < 0 || decimals < 0 || decimals > 18 {
		return "", fmt.Errorf("money: cannot express %s with %d decimals", m, decimals)
	}
	if decimals >= 6 {
		if m == 0 {
			return "0", nil
		}
		return strconv.FormatInt(int64(m), 10) + strings.Repeat("0", decimals-6), nil
	}
	div := int64(math.Pow10(6 - decimals))
	// Round up: asking a fraction of an atomic unit too little would undercharge.
	return strconv.FormatInt(MulDivCeil(int64(m), 1, div), 10), nil
}

// Wide is an unsigned 128-bit integer, for sums of token-price products.
type Wide struct{ Hi, Lo uint64 }

// SumOfProducts adds a*b over non-negative pairs in 128 bits.
func SumOfProducts(pairs ...[2]int64) Wide {
	var w Wide
	for _, p := range pairs {
		if p[0] < 0 || p[1] < 0 {
			panic("money: SumOfProducts needs non-negative factors")
		}
		hi, lo := bits.Mul64(uint64(p[0]), uint64(p[1]))
		var carry uint64
		w.Lo, carry = bits.Add64(w.Lo, lo, 0)
		w.Hi, _ = bits.Add64(w.Hi, hi, carry)
	}
	return w
}

// CeilDiv returns ceil(w/d) for positive d, saturating at MaxInt64.
func CeilDiv(w Wide, d int64) int64 {
	if d <= 0 {
		panic("money: CeilDiv needs d > 0")
	}
	if w.Hi >= uint64(d) {
		return math.MaxInt64
	}
	q, r := bits.Div64(w.Hi, w.Lo, uint64(d))
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}
