// Package argocd tests the Argo CD health checks of config/argocd: every
// Lua script runs as Argo CD runs it from argocd-cm, against objects of each
// state in testdata/<kind>/<state>.yaml, and argocd-cm.yaml is generated
// from the scripts.
package argocd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	v1 "github.com/tollgate-dev/tollgate/api/v1alpha1"
)

// healthDir holds one script per kind, named after the kind in lower case.
var healthDir = filepath.Join("..", "..", "config", "argocd", "health")

// healthCase is one testdata object and the health Argo CD must give it.
type healthCase struct {
	file    string   // in testdata/<kind>/
	status  string   // Healthy, Progressing or Degraded
	mention []string // what the message must say
}

// cases are keyed by the kind in lower case: the script's and the testdata
// directory's name. Every file in testdata has a case.
var cases = map[string][]healthCase{
	"modelprovider": {
		{"healthy.yaml", "Healthy", []string{"can be routed to"}},
		{"progressing-no-status.yaml", "Progressing", []string{"Waiting for the controller"}},
		{"progressing-stale-generation.yaml", "Progressing", []string{"observe generation 3", "for generation 2"}},
		{"degraded-secret-not-found.yaml", "Degraded", []string{"SecretNotFound", "Secret openai-credentials"}},
		{"degraded-secret-key-not-found.yaml", "Degraded", []string{"SecretKeyNotFound", `no key "api-key"`}},
		{"degraded-invalid.yaml", "Degraded", []string{"Not accepted", "Invalid", "model gpt-4o-mini"}},
	},
	"airoute": {
		{"healthy.yaml", "Healthy", []string{"Gateway demo/ai-gateway", "Gateway gateways/ai-gateway-eu sectionName http"}},
		{"progressing-no-status.yaml", "Progressing", []string{"Waiting for the controller"}},
		{"progressing-stale-generation.yaml", "Progressing", []string{"observe generation 4", "for generation 3"}},
		{"degraded-provider-not-found.yaml", "Degraded", []string{"Gateway demo/ai-gateway", "ProviderNotFound", "ModelProvider openia"}},
		{"degraded-model-not-found.yaml", "Degraded", []string{"Gateway demo/ai-gateway", "ModelNotFound", "gpt-4o-nano"}},
		{"degraded-no-matching-parent.yaml", "Degraded", []string{"Gateway demo/ai-gatway does not accept", "NoMatchingParent"}},
		{"degraded-no-matching-listener.yaml", "Degraded", []string{"Gateway demo/ai-gateway sectionName https port 443 does not accept", "NoMatchingParent"}},
		{"degraded-not-allowed-by-parent.yaml", "Degraded", []string{"Gateway istio-system/istio-ingress does not accept", "NotAllowedByParent", "GatewayClass istio"}},
		{"degraded-namespace-not-allowed.yaml", "Degraded", []string{"Gateway gateways/shared-gateway", "NotAllowedByParent", "namespace demo"}},
		{"degraded-unsupported-value.yaml", "Degraded", []string{"Service demo/ai-gateway", "UnsupportedValue"}},
	},
	"tenant": {
		{"healthy.yaml", "Healthy", []string{"can call the gateway"}},
		{"healthy-suspended.yaml", "Healthy", []string{"suspended", "Suspended"}},
		{"progressing-no-status.yaml", "Progressing", []string{"Waiting for the controller"}},
		{"progressing-keys-pending.yaml", "Progressing", []string{"KeysPending", "keys default"}},
		{"progressing-stale-generation.yaml", "Progressing", []string{"observe generation 5", "for generation 4"}},
		{"degraded-not-accepted.yaml", "Degraded", []string{"NotAccepted"}},
	},
	"paymentpolicy": {
		{"healthy.yaml", "Healthy", []string{"Enforced by Gateway ai-gateway"}},
		{"progressing-no-status.yaml", "Progressing", []string{"Waiting for the controller"}},
		{"progressing-pending.yaml", "Progressing", []string{"Pending", "No programmed Gateway"}},
		{"progressing-stale-generation.yaml", "Progressing", []string{"observe generation 2", "for generation 1"}},
		{"degraded-invalid.yaml", "Degraded", []string{"Not accepted", "Invalid", "Mars/Olympus_Mons"}},
		{"degraded-conflicted.yaml", "Degraded", []string{"Conflicted", "PaymentPolicy prepaid-usd"}},
		{"degraded-target-not-found.yaml", "Degraded", []string{"TargetNotFound", "AIRoute chat-v2"}},
		{"degraded-secret-not-found.yaml", "Degraded", []string{"References not resolved", "SecretNotFound", "x402-facilitator"}},
		{"degraded-secret-key-not-found.yaml", "Degraded", []string{"SecretKeyNotFound", `no key "token"`}},
	},
	"proxyconfig": {
		{"healthy.yaml", "Healthy", []string{"The ProxyConfig is valid"}},
		{"progressing-no-status.yaml", "Progressing", []string{"Waiting for the controller"}},
		{"progressing-stale-generation.yaml", "Progressing", []string{"observe generation 2", "for generation 1"}},
		{"degraded-invalid.yaml", "Degraded", []string{"Invalid", "ledger.type Redis"}},
	},
}

func TestHealth(t *testing.T) {
	for kind, kindCases := range cases {
		script := readScript(t, kind)
		for _, c := range kindCases {
			t.Run(kind+"/"+strings.TrimSuffix(c.file, ".yaml"), func(t *testing.T) {
				obj := readObject(t, filepath.Join("testdata", kind, c.file))
				got, err := runHealth(script, obj)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: %s", got.Status, got.Message)
				if got.Status != c.status {
					t.Errorf("status = %s (%q), want %s", got.Status, got.Message, c.status)
				}
				if strings.TrimSpace(got.Message) == "" {
					t.Error("message is empty")
				}
				for _, m := range c.mention {
					if !strings.Contains(got.Message, m) {
						t.Errorf("message %q does not mention %q", got.Message, m)
					}
				}
				checkInvariants(t, obj, got)
			})
		}
	}
}

// variant is a testdata object changed into a state today's controllers do
// not write but Argo CD may still see: a status from an older or newer
// Tollgate, a condition another writer left Unknown, one source of
// observedGeneration without the other. The rules hold there too.
type variant struct {
	name    string
	kind    string
	file    string
	change  func(obj map[string]any)
	status  string
	mention []string
}

var variants = []variant{
	{"status.observedGeneration alone is stale", "modelprovider", "progressing-stale-generation.yaml", dropConditionGenerations, "Progressing", []string{"observe generation 3"}},
	{"conditions alone are stale", "modelprovider", "progressing-stale-generation.yaml", dropStatusGeneration, "Progressing", []string{"observe generation 3"}},
	{"Ready Unknown", "modelprovider", "healthy.yaml", setCondition(-1, "Ready", "Unknown", "Pending", "Checking."), "Progressing", []string{"Ready"}},
	{"Ready False for another reason", "modelprovider", "healthy.yaml", setCondition(-1, "Ready", "False", "Unreachable", "The provider does not answer."), "Degraded", []string{"Unreachable"}},
	{"no Ready condition", "modelprovider", "healthy.yaml", removeCondition(-1, "Ready"), "Progressing", []string{"Ready"}},
	{"a condition without a message", "modelprovider", "degraded-secret-not-found.yaml", setCondition(-1, "ResolvedRefs", "False", "SecretNotFound", ""), "Degraded", []string{"SecretNotFound"}},

	{"a parent's ResolvedRefs Unknown", "airoute", "healthy.yaml", setCondition(1, "ResolvedRefs", "Unknown", "Pending", "Checking."), "Progressing", []string{"Gateway gateways/ai-gateway-eu"}},
	{"a parent without Accepted", "airoute", "healthy.yaml", removeCondition(0, "Accepted"), "Progressing", []string{"Gateway demo/ai-gateway"}},
	{"one parent of two stale", "airoute", "healthy.yaml", setConditionGeneration(1, "Accepted", 1), "Progressing", []string{"observe generation 2"}},

	{"status.observedGeneration alone is stale", "tenant", "progressing-stale-generation.yaml", dropConditionGenerations, "Progressing", []string{"observe generation 5"}},
	{"conditions alone are stale", "tenant", "progressing-stale-generation.yaml", dropStatusGeneration, "Progressing", []string{"observe generation 5"}},
	{"Ready Unknown", "tenant", "healthy.yaml", setCondition(-1, "Ready", "Unknown", "Pending", "Checking."), "Progressing", []string{"Ready"}},

	{"status.observedGeneration alone is stale", "paymentpolicy", "progressing-stale-generation.yaml", dropConditionGenerations, "Progressing", []string{"observe generation 2"}},
	{"conditions alone are stale", "paymentpolicy", "progressing-stale-generation.yaml", dropStatusGeneration, "Progressing", []string{"observe generation 2"}},
	{"no Enforced condition", "paymentpolicy", "healthy.yaml", removeCondition(-1, "Enforced"), "Progressing", []string{"Enforced"}},
	{"Enforced False for another reason", "paymentpolicy", "healthy.yaml", setCondition(-1, "Enforced", "False", "GatewayGone", "The Gateway was deleted."), "Degraded", []string{"GatewayGone"}},

	{"status.observedGeneration alone is stale", "proxyconfig", "progressing-stale-generation.yaml", dropConditionGenerations, "Progressing", []string{"observe generation 2"}},
	{"conditions alone are stale", "proxyconfig", "progressing-stale-generation.yaml", dropStatusGeneration, "Progressing", []string{"observe generation 2"}},
	{"Accepted Unknown", "proxyconfig", "healthy.yaml", setCondition(-1, "Accepted", "Unknown", "Pending", "Checking."), "Progressing", []string{"Accepted"}},
}

func TestVariants(t *testing.T) {
	for _, v := range variants {
		t.Run(v.kind+"/"+v.name, func(t *testing.T) {
			obj := readObject(t, filepath.Join("testdata", v.kind, v.file))
			v.change(obj)
			got, err := runHealth(readScript(t, v.kind), obj)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", got.Status, got.Message)
			if got.Status != v.status {
				t.Errorf("status = %s (%q), want %s", got.Status, got.Message, v.status)
			}
			for _, m := range v.mention {
				if !strings.Contains(got.Message, m) {
					t.Errorf("message %q does not mention %q", got.Message, m)
				}
			}
			checkInvariants(t, obj, got)
		})
	}
}

// conditionsAt returns status.conditions (parent < 0) or the conditions of
// status.parents[parent].
func conditionsAt(obj map[string]any, parent int) []any {
	status := obj["status"].(map[string]any)
	if parent < 0 {
		return status["conditions"].([]any)
	}
	return status["parents"].([]any)[parent].(map[string]any)["conditions"].([]any)
}

func setCondition(parent int, typ, status, reason, message string) func(map[string]any) {
	return func(obj map[string]any) {
		for _, c := range conditionsAt(obj, parent) {
			if c := c.(map[string]any); c["type"] == typ {
				c["status"], c["reason"], c["message"] = status, reason, message
				return
			}
		}
		panic("no condition " + typ)
	}
}

func setConditionGeneration(parent int, typ string, generation int64) func(map[string]any) {
	return func(obj map[string]any) {
		for _, c := range conditionsAt(obj, parent) {
			if c := c.(map[string]any); c["type"] == typ {
				c["observedGeneration"] = generation
				return
			}
		}
		panic("no condition " + typ)
	}
}

func removeCondition(parent int, typ string) func(map[string]any) {
	return func(obj map[string]any) {
		list := slices.DeleteFunc(conditionsAt(obj, parent), func(c any) bool { return c.(map[string]any)["type"] == typ })
		if parent < 0 {
			obj["status"].(map[string]any)["conditions"] = list
		} else {
			obj["status"].(map[string]any)["parents"].([]any)[parent].(map[string]any)["conditions"] = list
		}
	}
}

func dropConditionGenerations(obj map[string]any) {
	for _, c := range conditionsAt(obj, -1) {
		delete(c.(map[string]any), "observedGeneration")
	}
}

func dropStatusGeneration(obj map[string]any) {
	unstructured.RemoveNestedField(obj, "status", "observedGeneration")
}

// nilWord is how a nil Lua value prints.
var nilWord = regexp.MustCompile(`\bnil\b`)

// checkInvariants holds for every object, whatever its case says: the
// message reads well, a status older than the spec is Progressing and says
// which generation it waits for, and Degraded names the reason of a False
// condition.
func checkInvariants(t *testing.T, obj map[string]any, got health) {
	t.Helper()
	if strings.HasSuffix(got.Message, ": ") || nilWord.MatchString(got.Message) {
		t.Errorf("message %q has an empty or nil part", got.Message)
	}
	if g, ok, _ := unstructured.NestedInt64(obj, "status", "observedGeneration"); ok && g < (&unstructured.Unstructured{Object: obj}).GetGeneration() {
		if got.Status != "Progressing" || !strings.Contains(got.Message, "observe generation") {
			t.Errorf("status.observedGeneration %d is stale: got %s %q, want Progressing", g, got.Status, got.Message)
		}
	}
	u := &unstructured.Unstructured{Object: obj}
	conds := conditionsOf(obj)
	for _, c := range conds {
		if g, ok := c["observedGeneration"].(int64); ok && g < u.GetGeneration() {
			want := fmt.Sprintf("observe generation %d", u.GetGeneration())
			if got.Status != "Progressing" || !strings.Contains(got.Message, want) {
				t.Errorf("condition %s is for generation %d of %d: got %s %q, want Progressing mentioning %q",
					c["type"], g, u.GetGeneration(), got.Status, got.Message, want)
			}
			return
		}
	}
	if got.Status != "Degraded" {
		return
	}
	var reasons []string
	for _, c := range conds {
		if c["status"] == "False" {
			reasons = append(reasons, c["reason"].(string))
		}
	}
	if !slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(got.Message, r) }) {
		t.Errorf("Degraded message %q mentions none of the False conditions' reasons %v", got.Message, reasons)
	}
}

// conditionsOf returns status.conditions and the conditions of every
// status.parents entry.
func conditionsOf(obj map[string]any) []map[string]any {
	var out []map[string]any
	add := func(list []any) {
		for _, c := range list {
			out = append(out, c.(map[string]any))
		}
	}
	if list, ok, _ := unstructured.NestedSlice(obj, "status", "conditions"); ok {
		add(list)
	}
	if parents, ok, _ := unstructured.NestedSlice(obj, "status", "parents"); ok {
		for _, p := range parents {
			if list, ok := p.(map[string]any)["conditions"].([]any); ok {
				add(list)
			}
		}
	}
	return out
}

// TestEveryKindIsCovered fails when a Tollgate kind has no script or no
// cases, or when a script, a testdata directory or a testdata file has no
// case: new kinds and new samples cannot go untested.
func TestEveryKindIsCovered(t *testing.T) {
	var kinds []string
	for lower := range tollgateKinds(t) {
		kinds = append(kinds, lower)
	}
	sort.Strings(kinds)
	if len(kinds) < 5 {
		t.Fatalf("found only kinds %v in api/v1alpha1", kinds)
	}
	var scripts []string
	files, err := filepath.Glob(filepath.Join(healthDir, "*.lua"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		scripts = append(scripts, strings.TrimSuffix(filepath.Base(f), ".lua"))
	}
	if diff := cmp.Diff(kinds, scripts); diff != "" {
		t.Errorf("config/argocd/health/*.lua differ from the tollgate.dev kinds (-kinds +scripts):\n%s", diff)
	}
	var withCases []string
	for kind := range cases {
		withCases = append(withCases, kind)
	}
	sort.Strings(withCases)
	if diff := cmp.Diff(kinds, withCases); diff != "" {
		t.Errorf("cases differ from the tollgate.dev kinds (-kinds +cases):\n%s", diff)
	}
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, ok := cases[d.Name()]; !ok {
			t.Errorf("testdata/%s has no cases", d.Name())
		}
	}
	for kind, kindCases := range cases {
		files, err := filepath.Glob(filepath.Join("testdata", kind, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var onDisk, listed []string
		for _, f := range files {
			onDisk = append(onDisk, filepath.Base(f))
		}
		for _, c := range kindCases {
			listed = append(listed, c.file)
		}
		sort.Strings(listed)
		if diff := cmp.Diff(onDisk, listed); diff != "" {
			t.Errorf("testdata/%s differs from its cases (-files +cases):\n%s", kind, diff)
		}
		for _, want := range []string{"Healthy", "Progressing", "Degraded"} {
			if !slices.ContainsFunc(kindCases, func(c healthCase) bool { return c.status == want }) {
				t.Errorf("%s has no %s case", kind, want)
			}
		}
	}
}

// TestMissingFields removes, one at a time, every field of every testdata
// object's status (and metadata.generation): a script must still answer
// with a valid status and a message, never fail. Argo CD shows a failing
// script as an error instead of a health.
func TestMissingFields(t *testing.T) {
	for kind, kindCases := range cases {
		script := readScript(t, kind)
		for _, c := range kindCases {
			obj := readObject(t, filepath.Join("testdata", kind, c.file))
			statuses := withoutEachField(obj["status"])
			if _, ok := obj["status"]; ok && len(statuses) < 10 {
				t.Errorf("%s/%s: only %d statuses with a field removed", kind, c.file, len(statuses))
			}
			for _, status := range statuses {
				o := runtime.DeepCopyJSON(obj)
				if status == nil {
					delete(o, "status")
				} else {
					o["status"] = status
				}
				checkAnswers(t, kind+"/"+c.file, script, o)
			}
			o := runtime.DeepCopyJSON(obj)
			unstructured.RemoveNestedField(o, "metadata", "generation")
			checkAnswers(t, kind+"/"+c.file+" without generation", script, o)
		}
	}
}

func checkAnswers(t *testing.T, name, script string, obj map[string]any) {
	t.Helper()
	got, err := runHealth(script, obj)
	switch {
	case err != nil:
		t.Errorf("%s: %v\nstatus: %v", name, err, obj["status"])
	case got.Status != "Healthy" && got.Status != "Progressing" && got.Status != "Degraded":
		t.Errorf("%s: status %q", name, got.Status)
	case got.Message == "":
		t.Errorf("%s: %s without a message", name, got.Status)
	}
}

// withoutEachField returns v once for each map key and list element found
// anywhere in it, with that one removed (nil when v itself is removed).
func withoutEachField(v any) []any {
	out := []any{nil}
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			for _, c := range withoutEachField(child) {
				m := runtime.DeepCopyJSONValue(v).(map[string]any)
				if c == nil {
					delete(m, k)
				} else {
					m[k] = c
				}
				out = append(out, m)
			}
		}
	case []any:
		for i, child := range v {
			for _, c := range withoutEachField(child) {
				l := runtime.DeepCopyJSONValue(v).([]any)
				if c == nil {
					l = slices.Delete(l, i, i+1)
				} else {
					l[i] = c
				}
				out = append(out, l)
			}
		}
	}
	return out
}

// TestToLua checks that objects reach Lua as Argo CD passes them: maps as
// tables with string keys, lists as sequences from 1, strings, integers and
// floats as numbers, booleans, and nothing lost.
func TestToLua(t *testing.T) {
	obj := readObject(t, filepath.Join("testdata", "paymentpolicy", "healthy.yaml"))
	obj["extra"] = map[string]any{"float": 1.5, "true": true, "false": false, "null": nil, "empty": "", "list": []any{int64(80), "x", false}}
	L := lua.NewState()
	defer L.Close()
	lv, err := toLua(L, obj)
	if err != nil {
		t.Fatal(err)
	}
	back := fromLua(lv)
	delete(obj["extra"].(map[string]any), "null") // a nil value is no key in a Lua table
	if diff := cmp.Diff(obj, back); diff != "" {
		t.Errorf("object -> Lua -> object changed (-want +got):\n%s", diff)
	}
	L.SetGlobal("obj", lv)
	if err := L.DoString(`
		assert(obj.status.conditions[1].type == "Accepted", "lists start at 1")
		assert(#obj.status.conditions == 3, "lists have a length")
		assert(obj.metadata.generation == 1 and type(obj.metadata.generation) == "number", "integers are numbers")
		assert(obj.status.conditions[1].observedGeneration < 2, "numbers compare")
		assert(obj.extra.float == 1.5, "floats are numbers")
		assert(obj.extra["true"] == true and obj.extra["false"] == false, "booleans are booleans")
		assert(obj.extra.null == nil, "null is nil")
		assert(obj.spec.softLimits[2] == 95, "numbers in lists")
		assert(obj.spec.prepaid == true, "spec booleans")
		assert("generation " .. obj.metadata.generation == "generation 1", "integers print without a fraction")
	`); err != nil {
		t.Error(err)
	}
	if _, err := toLua(L, map[string]any{"x": int32(1)}); err == nil {
		t.Error("toLua accepted an int32: unstructured objects hold int64")
	}
}

// fromLua is the inverse of toLua, for tests: a table whose keys are 1..n
// is a list.
func fromLua(v lua.LValue) any {
	switch v := v.(type) {
	case lua.LBool:
		return bool(v)
	case lua.LString:
		return string(v)
	case lua.LNumber:
		if float64(v) == float64(int64(v)) {
			return int64(v)
		}
		return float64(v)
	case *lua.LTable:
		if n := v.Len(); n > 0 {
			list := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				list = append(list, fromLua(v.RawGetInt(i)))
			}
			return list
		}
		m := map[string]any{}
		v.ForEach(func(k, val lua.LValue) { m[k.String()] = fromLua(val) })
		return m
	}
	return nil
}

// health is what a script returns, as Argo CD reads it.
type health struct {
	Status  string
	Message string
}

// runHealth runs a health script as Argo CD runs one from argocd-cm: with
// the base, package and table libraries only (argocd-cm scripts run without
// Lua's standard libraries unless useOpenLibs is set; Argo CD adds a safe
// os library, which these scripts do not use), the object as the global
// obj, the returned table as the health, and a deadline of one second.
func runHealth(script string, obj map[string]any) (health, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return health{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	L.SetContext(ctx)
	lv, err := toLua(L, obj)
	if err != nil {
		return health{}, err
	}
	L.SetGlobal("obj", lv)
	if err := L.DoString(script); err != nil {
		return health{}, err
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return health{}, fmt.Errorf("the script returned %s, not a table", L.Get(-1).Type())
	}
	var h health
	for key, dst := range map[string]*string{"status": &h.Status, "message": &h.Message} {
		switch v := hs.RawGetString(key).(type) {
		case lua.LString:
			*dst = string(v)
		case *lua.LNilType:
		default:
			return health{}, fmt.Errorf("hs.%s is a %s, not a string", key, v.Type())
		}
	}
	return h, nil
}

// toLua converts an unstructured object to Lua values as Argo CD does:
// maps to tables with string keys, lists to sequences, strings, numbers
// (int64 or float64) and booleans to themselves, null to nil. Any other
// type is an error rather than a silent nil.
func toLua(L *lua.LState, v any) (lua.LValue, error) {
	switch v := v.(type) {
	case nil:
		return lua.LNil, nil
	case bool:
		return lua.LBool(v), nil
	case string:
		return lua.LString(v), nil
	case int64:
		return lua.LNumber(v), nil
	case float64:
		return lua.LNumber(v), nil
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, e := range v {
			lv, err := toLua(L, e)
			if err != nil {
				return nil, err
			}
			t.Append(lv)
		}
		return t, nil
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, e := range v {
			lv, err := toLua(L, e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			t.RawSetString(k, lv)
		}
		return t, nil
	}
	return nil, fmt.Errorf("cannot convert %T to Lua", v)
}

// readObject reads a testdata object as Argo CD sees it (unstructured, with
// int64 and float64 numbers), after checking that it decodes strictly into
// its Go type, so that a misspelt or misplaced status field fails here
// instead of making a sample the controllers could not write.
func readObject(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	typed, err := tollgateScheme().New(u.GroupVersionKind())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := yaml.UnmarshalStrict(data, typed); err != nil {
		t.Fatalf("%s does not decode strictly into %T: %v", path, typed, err)
	}
	if u.GetGeneration() < 1 {
		t.Fatalf("%s: metadata.generation is not set; the API server always sets it", path)
	}
	if want := strings.ToLower(u.GetKind()); filepath.Base(filepath.Dir(path)) != want {
		t.Fatalf("%s is a %s, not in testdata/%s", path, u.GetKind(), want)
	}
	return u.Object
}

func readScript(t *testing.T, kind string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(healthDir, kind+".lua"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func tollgateScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := v1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// tollgateKinds maps the tollgate.dev kinds, in lower case, to their names.
func tollgateKinds(t *testing.T) map[string]string {
	t.Helper()
	pkg := reflect.TypeFor[v1.Tenant]().PkgPath()
	out := map[string]string{}
	for kind, typ := range tollgateScheme().KnownTypes(v1.GroupVersion) {
		if typ.PkgPath() == pkg && !strings.HasSuffix(kind, "List") {
			out[strings.ToLower(kind)] = kind
		}
	}
	return out
}
