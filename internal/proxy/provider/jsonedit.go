package provider

import (
	"bytes"
	"encoding/json"
)

// The pass-through path edits a client body in place rather than decoding
// and re-encoding it: every member it does not touch keeps its bytes.

// member is one top-level member of a JSON object: the raw bytes of its
// key (with quotes) and of its value.
type member struct {
	key, val []byte
}

// members calls fn for each top-level member of obj, which must be a valid
// JSON object (see json.Valid), until fn returns false.
func members(obj []byte, fn func(m member) bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return
		}
		k := i
		i = skipString(obj, i)
		key := obj[k:i]
		i = skipSpace(obj, i) + 1 // ':'
		i = skipSpace(obj, i)
		v := i
		i = skipValue(obj, i)
		if !fn(member{key, obj[v:i]}) {
			return
		}
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i++
	}
}

// keyIs reports whether a raw key, quotes included, names name. Escaped keys
// are decoded, so "mod\u0065l" is model, as it is to the upstream.
func keyIs(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return len(raw) == len(name)+2 && string(raw[1:len(raw)-1]) == name
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && s == name
}

// setMembers returns obj with every member named in set replaced by the
// given raw value, a nil value removing it. Members are removed wherever
// they are and added at the end, so duplicate keys cannot survive.
func setMembers(obj []byte, set map[string][]byte) []byte {
	out := make([]byte, 0, len(obj)+64)
	out = append(out, '{')
	members(obj, func(m member) bool {
		for name := range set {
			if keyIs(m.key, name) {
				return true
			}
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, m.key...), ':'), m.val...)
		return true
	})
	for _, name := range sortedKeys(set) {
		if set[name] == nil {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = appendString(out, name)
		out = append(append(out, ':'), set[name]...)
	}
	return append(out, '}')
}

// lookup returns the raw value of the member named name and how many
// members have that name.
func lookup(obj []byte, name string) (val []byte, n int) {
	members(obj, func(m member) bool {
		if keyIs(m.key, name) {
			val, n = m.val, n+1
		}
		return true
	})
	return val, n
}

// pick returns the value of obj's member named key (nil when there is
// none), and false when obj names it twice or other refuses one of the
// other members.
func pick(obj []byte, key string, other func(m member) bool) ([]byte, bool) {
	var val []byte
	ok := true
	members(obj, func(m member) bool {
		if keyIs(m.key, key) {
			ok = val == nil
			val = m.val
		} else {
			ok = other(m)
		}
		return ok
	})
	return val, ok
}

// onlyElement returns the element of a JSON array that holds exactly one.
func onlyElement(arr []byte) ([]byte, bool) {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return nil, false
	}
	i = skipSpace(arr, i+1)
	if i >= len(arr) || arr[i] == ']' {
		return nil, false
	}
	v := i
	i = skipValue(arr, i)
	el := arr[v:i]
	i = skipSpace(arr, i)
	return el, i < len(arr) && arr[i] == ']'
}

func isNull(raw []byte) bool { return string(raw) == "null" }

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ { // insertion sort: a handful of keys
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}
