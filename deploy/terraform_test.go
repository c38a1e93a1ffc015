package deploy_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/iamflow/iamflow/services/ingest"
)

// The Terraform in deploy/oci cannot be planned here (no provider, no
// tenancy), so these tests check what can be checked without them: the files
// parse, every reference resolves, every resource has the arguments the OCI
// provider documents as required and no argument it does not document, the
// variables' defaults and validations work, and the values that reach OCI
// (the subscription URL, the policy statements, the rule's condition) have
// the shape OCI documents.

// tfSchema is what the OCI provider's documentation says about a resource or
// block: required and optional arguments, nested blocks, and the attributes
// it exports.
type tfSchema struct {
	required, optional []string
	blocks             map[string]tfSchema // nested blocks; a name in required makes the block required
	exported           []string
}

// providerSchemas are the resources deploy/oci uses, from the provider's
// docs (https://registry.terraform.io/providers/oracle/oci/latest/docs,
// resources ons_notification_topic, ons_subscription, events_rule,
// identity_dynamic_group, identity_policy). A resource type missing here fails
// the test: add it from its documentation page.
var providerSchemas = map[string]tfSchema{
	"oci_ons_notification_topic": {
		required: []string{"compartment_id", "name"},
		optional: []string{"description", "defined_tags", "freeform_tags"},
		exported: []string{"id", "api_endpoint", "etag", "short_topic_id", "state", "time_created", "topic_id"},
	},
	"oci_ons_subscription": {
		required: []string{"compartment_id", "endpoint", "protocol", "topic_id"},
		optional: []string{"defined_tags", "delivery_policy", "freeform_tags", "metadata"},
		exported: []string{"id", "created_time", "etag", "state"},
	},
	"oci_events_rule": {
		required: []string{"compartment_id", "condition", "display_name", "is_enabled", "actions"},
		optional: []string{"defined_tags", "description", "freeform_tags"},
		blocks: map[string]tfSchema{"actions": {
			required: []string{"actions"},
			blocks: map[string]tfSchema{"actions": {
				required: []string{"action_type", "is_enabled"},
				optional: []string{"description", "function_id", "stream_id", "topic_id"},
			}},
		}},
		exported: []string{"id", "lifecycle_message", "state", "time_created"},
	},
	"oci_identity_dynamic_group": {
		required: []string{"compartment_id", "description", "matching_rule", "name"},
		optional: []string{"defined_tags", "freeform_tags"},
		exported: []string{"id", "inactive_state", "state", "time_created"},
	},
	"oci_identity_policy": {
		required: []string{"compartment_id", "description", "name", "statements"},
		optional: []string{"defined_tags", "freeform_tags", "version_date"},
		exported: []string{"id", "etag", "inactive_state", "lastUpdateETag", "policyHash", "state", "time_created"},
	},
}

// metaArguments are Terraform's own arguments of every resource block.
var metaArguments = []string{"count", "for_each", "depends_on", "provider"}

// lifecycleSchema is the lifecycle block (Terraform 1.5).
var lifecycleSchema = tfSchema{
	optional: []string{"create_before_destroy", "prevent_destroy", "ignore_changes", "replace_triggered_by", "precondition", "postcondition"},
	blocks: map[string]tfSchema{
		"precondition":  {required: []string{"condition", "error_message"}},
		"postcondition": {required: []string{"condition", "error_message"}},
	},
}

// tfModule is deploy/oci, parsed.
type tfModule struct {
	variables map[string]*hclsyntax.Block
	resources map[string]*hclsyntax.Block // "type.name"
	data      map[string]*hclsyntax.Block // "type.name"
	locals    map[string]*hclsyntax.Attribute
	outputs   map[string]*hclsyntax.Block
}

func loadTerraform(t *testing.T) *tfModule {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("oci", "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files in deploy/oci: %v", err)
	}
	p := hclparse.NewParser()
	m := &tfModule{variables: map[string]*hclsyntax.Block{}, resources: map[string]*hclsyntax.Block{},
		data: map[string]*hclsyntax.Block{}, locals: map[string]*hclsyntax.Attribute{}, outputs: map[string]*hclsyntax.Block{}}
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Fatalf("%s does not parse: %v", path, diags)
		}
		body := f.Body.(*hclsyntax.Body)
		if len(body.Attributes) > 0 {
			t.Errorf("%s: top-level attributes %v; Terraform allows only blocks there", path, slices.Sorted(maps.Keys(body.Attributes)))
		}
		for _, b := range body.Blocks {
			key := strings.Join(b.Labels, ".")
			add := func(into map[string]*hclsyntax.Block, labels int) {
				if len(b.Labels) != labels {
					t.Errorf("%s: %s block with labels %q, want %d", b.DefRange().String(), b.Type, b.Labels, labels)
					return
				}
				if _, dup := into[key]; dup {
					t.Errorf("%s: %s %q declared twice", b.DefRange().String(), b.Type, key)
				}
				into[key] = b
			}
			switch b.Type {
			case "terraform", "provider":
			case "variable":
				add(m.variables, 1)
			case "resource":
				add(m.resources, 2)
			case "data":
				add(m.data, 2)
			case "output":
				add(m.outputs, 1)
			case "locals":
				for n, a := range b.Body.Attributes {
					m.locals[n] = a
				}
			default:
				t.Errorf("%s: unexpected top-level block %q", b.DefRange().String(), b.Type)
			}
		}
	}
	return m
}

// Every reference in every expression names something declared, with the
// index a counted or for_each resource needs and an attribute the provider
// exports; every variable is used; count and each appear only where they exist.
func TestTerraformReferencesResolve(t *testing.T) {
	m := loadTerraform(t)
	used := map[string]bool{}
	check := func(where string, expr hcl.Expression, scope *hclsyntax.Block) {
		for _, tr := range expr.Variables() {
			root := tr.RootName()
			pos := tr.SourceRange().String()
			attr := func(i int) string {
				if i < len(tr) {
					if a, ok := tr[i].(hcl.TraverseAttr); ok {
						return a.Name
					}
				}
				return ""
			}
			switch root {
			case "var":
				name := attr(1)
				if _, ok := m.variables[name]; !ok {
					t.Errorf("%s (%s): var.%s is not declared", pos, where, name)
				}
				used[name] = true
			case "local":
				if _, ok := m.locals[attr(1)]; !ok {
					t.Errorf("%s (%s): local.%s is not declared", pos, where, attr(1))
				}
			case "data":
				if _, ok := m.data[attr(1)+"."+attr(2)]; !ok {
					t.Errorf("%s (%s): data.%s.%s is not declared", pos, where, attr(1), attr(2))
				}
			case "count", "each":
				meta := map[string]string{"count": "count", "each": "for_each"}[root]
				if scope == nil || scope.Body.Attributes[meta] == nil {
					t.Errorf("%s (%s): %s used outside a resource with %s", pos, where, root, meta)
				}
			case "path", "terraform", "self":
			default:
				key := root + "." + attr(1)
				r, ok := m.resources[key]
				if !ok {
					t.Errorf("%s (%s): %s is not a declared resource", pos, where, key)
					continue
				}
				next := 2
				if r.Body.Attributes["count"] != nil || r.Body.Attributes["for_each"] != nil {
					if len(tr) > 2 {
						if _, indexed := tr[2].(hcl.TraverseIndex); !indexed {
							t.Errorf("%s (%s): %s has count or for_each and must be indexed", pos, where, key)
						}
					}
					next = 3
				}
				if a := attr(next); a != "" {
					s := providerSchemas[r.Labels[0]]
					if !slices.Contains(s.exported, a) && !slices.Contains(s.required, a) && !slices.Contains(s.optional, a) {
						t.Errorf("%s (%s): %s has no attribute %q", pos, where, key, a)
					}
				}
			}
		}
	}
	var walk func(where string, body *hclsyntax.Body, scope *hclsyntax.Block)
	walk = func(where string, body *hclsyntax.Body, scope *hclsyntax.Block) {
		for n, a := range body.Attributes {
			check(where+"."+n, a.Expr, scope)
		}
		for _, b := range body.Blocks {
			walk(where+"."+b.Type, b.Body, scope)
		}
	}
	for k, b := range m.resources {
		walk(k, b.Body, b)
	}
	for k, b := range m.data {
		walk("data."+k, b.Body, b)
	}
	for k, b := range m.outputs {
		walk("output."+k, b.Body, nil)
	}
	for k, b := range m.variables {
		for n, a := range b.Body.Attributes {
			if n != "type" { // a type constraint, not an expression
				check("variable."+k+"."+n, a.Expr, nil)
			}
		}
		walk("variable."+k, &hclsyntax.Body{Blocks: b.Body.Blocks}, nil)
	}
	for k, a := range m.locals {
		check("local."+k, a.Expr, nil)
	}
	for name := range m.variables {
		if !used[name] {
			t.Errorf("variable %q is declared and never used", name)
		}
	}
}

// Each resource has every argument the provider documents as required and
// none it does not document, so a typo or a forgotten argument shows here and
// not at plan time.
func TestTerraformRequiredArguments(t *testing.T) {
	m := loadTerraform(t)
	var checkBody func(where string, body *hclsyntax.Body, s tfSchema, meta bool)
	checkBody = func(where string, body *hclsyntax.Body, s tfSchema, meta bool) {
		present := map[string]bool{}
		for n := range body.Attributes {
			present[n] = true
			if !slices.Contains(s.required, n) && !slices.Contains(s.optional, n) && !(meta && slices.Contains(metaArguments, n)) {
				t.Errorf("%s: argument %q is not documented for it", where, n)
			}
		}
		for _, b := range body.Blocks {
			present[b.Type] = true
			switch {
			case meta && b.Type == "lifecycle":
				checkBody(where+".lifecycle", b.Body, lifecycleSchema, false)
			case s.blocks[b.Type].required != nil || s.blocks[b.Type].optional != nil:
				checkBody(where+"."+b.Type, b.Body, s.blocks[b.Type], false)
			default:
				t.Errorf("%s: block %q is not documented for it", where, b.Type)
			}
		}
		for _, r := range s.required {
			if !present[r] {
				t.Errorf("%s: required argument %q is missing", where, r)
			}
		}
	}
	for key, b := range m.resources {
		s, ok := providerSchemas[b.Labels[0]]
		if !ok {
			t.Errorf("resource %s: type %s is not in providerSchemas; add its arguments from the provider's documentation", key, b.Labels[0])
			continue
		}
		checkBody(key, b.Body, s, true)
	}
	for key, b := range m.variables {
		for _, n := range []string{"description", "type"} {
			if b.Body.Attributes[n] == nil {
				t.Errorf("variable %s: no %s", key, n)
			}
		}
	}
}

// terraformFunctions are the Terraform functions these files use, as far as
// checking them needs: those in go-cty's standard library behave as
// Terraform's do.
func terraformFunctions() map[string]function.Function {
	return map[string]function.Function{
		"can":        tryfunc.CanFunc,
		"try":        tryfunc.TryFunc,
		"regex":      stdlib.RegexFunc,
		"length":     stdlib.LengthFunc,
		"keys":       stdlib.KeysFunc,
		"values":     stdlib.ValuesFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"alltrue": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
			Type:   function.StaticReturnType(cty.Bool),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				for it := args[0].ElementIterator(); it.Next(); {
					if _, v := it.Element(); v.False() {
						return cty.False, nil
					}
				}
				return cty.True, nil
			},
		}),
	}
}

// variable returns a variable's type and, if it has one, its default
// converted to that type.
func variable(t *testing.T, m *tfModule, name string) (cty.Type, cty.Value) {
	t.Helper()
	b := m.variables[name]
	if b == nil {
		t.Fatalf("no variable %q", name)
	}
	typ, diags := typeexpr.TypeConstraint(b.Body.Attributes["type"].Expr)
	if diags.HasErrors() {
		t.Fatalf("variable %s: type: %v", name, diags)
	}
	a := b.Body.Attributes["default"]
	if a == nil {
		return typ, cty.NullVal(typ)
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("variable %s: default: %v", name, diags)
	}
	def, err := convert.Convert(v, typ)
	if err != nil {
		t.Fatalf("variable %s: default does not convert to its type: %v", name, err)
	}
	return typ, def
}

// validate runs a variable's validation blocks for value and returns the
// error messages of the conditions that failed.
func validate(t *testing.T, m *tfModule, name string, value cty.Value) []string {
	t.Helper()
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{name: value})},
		Functions: terraformFunctions(),
	}
	var failed []string
	for _, b := range m.variables[name].Body.Blocks {
		if b.Type != "validation" {
			continue
		}
		ok, diags := b.Body.Attributes["condition"].Expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("variable %s: condition cannot be evaluated: %v", name, diags)
		}
		if ok.False() {
			msg, _ := b.Body.Attributes["error_message"].Expr.Value(nil)
			failed = append(failed, msg.AsString())
		}
	}
	return failed
}

// Terraform rejects an error_message that is not a sentence (a capital
// first, a period or question mark last); every validation has both parts,
// and every default passes its own validations.
func TestTerraformValidationsAreWellFormed(t *testing.T) {
	m := loadTerraform(t)
	sentence := regexp.MustCompile(`^[A-Z].*[.?]$`)
	for name, b := range m.variables {
		for _, vb := range b.Body.Blocks {
			if vb.Type != "validation" {
				t.Errorf("variable %s: unexpected block %q", name, vb.Type)
				continue
			}
			msg := vb.Body.Attributes["error_message"]
			if vb.Body.Attributes["condition"] == nil || msg == nil {
				t.Fatalf("variable %s: validation needs condition and error_message", name)
			}
			v, diags := msg.Expr.Value(nil)
			if diags.HasErrors() || !sentence.MatchString(v.AsString()) {
				t.Errorf("variable %s: error_message %q is not a sentence Terraform accepts", name, v.GoString())
			}
		}
		if _, def := variable(t, m, name); !def.IsNull() {
			if failed := validate(t, m, name, def); len(failed) > 0 {
				t.Errorf("variable %s: its default fails its validation: %q", name, failed)
			}
		}
	}
}

// The webhook credentials go into the subscription URL's user-info unencoded,
// so only characters that need no encoding there are accepted; and one or two
// passwords (two while rotating), each long enough.
func TestTerraformWebhookValidations(t *testing.T) {
	m := loadTerraform(t)
	good := strings.Repeat("0123456789abcdef", 4)
	pw := func(kv ...string) cty.Value {
		vals := map[string]cty.Value{}
		for i := 0; i+1 < len(kv); i += 2 {
			vals[kv[i]] = cty.StringVal(kv[i+1])
		}
		if len(vals) == 0 {
			return cty.MapValEmpty(cty.String)
		}
		return cty.MapVal(vals)
	}
	for _, tc := range []struct {
		name  string
		value cty.Value
		ok    bool
	}{
		{"one password", pw("2025-01", good), true},
		{"two while rotating", pw("2025-01", good, "2025-07", strings.ToUpper(good)+"._~-"), true},
		{"none", pw(), false},
		{"three", pw("a", good, "b", good, "c", good), false},
		{"too short", pw("a", good[:31]), false},
		{"a space", pw("a", good+" x"), false},
		{"a plus", pw("a", good+"+x"), false},
		{"an at sign", pw("a", good+"@x"), false},
		{"a colon", pw("a", good+":x"), false},
		{"a percent", pw("a", good+"%41"), false},
		{"a slash", pw("a", good+"/x"), false},
		{"a bad label", pw("Label One", good), false},
	} {
		failed := validate(t, m, "webhook_passwords", tc.value)
		if (len(failed) == 0) != tc.ok {
			t.Errorf("webhook_passwords %s: failed validations %q, want ok=%v", tc.name, failed, tc.ok)
		}
	}
	for user, ok := range map[string]bool{"iamflow": true, "oci.notifications-1": true, "a:b": false, "a b": false, "a@b": false, "": false} {
		if failed := validate(t, m, "webhook_username", cty.StringVal(user)); (len(failed) == 0) != ok {
			t.Errorf("webhook_username %q: failed %q, want ok=%v", user, failed, ok)
		}
	}
	for host, ok := range map[string]bool{"iamflow.example.com": true, "iamflow.example.com:8443": true,
		"https://iamflow.example.com": false, "iamflow.example.com/x": false, "u:p@iamflow.example.com": false} {
		if failed := validate(t, m, "webhook_host", cty.StringVal(host)); (len(failed) == 0) != ok {
			t.Errorf("webhook_host %q: failed %q, want ok=%v", host, failed, ok)
		}
	}
}

// resourceAttr evaluates one argument of a resource with the given variables
// and references.
func resourceAttr(t *testing.T, m *tfModule, resource, attr string, vars map[string]cty.Value) cty.Value {
	t.Helper()
	b := m.resources[resource]
	if b == nil || b.Body.Attributes[attr] == nil {
		t.Fatalf("%s has no %s", resource, attr)
	}
	ctx := &hcl.EvalContext{Variables: vars, Functions: terraformFunctions()}
	v, diags := b.Body.Attributes[attr].Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("%s.%s: %v", resource, attr, diags)
	}
	return v
}

// The subscription URL carries the credentials exactly (a password from the
// validation's alphabet needs no encoding, so what ingest compares is what
// was configured), one subscription per password label, and stays within
// OCI's 512 characters.
func TestTerraformSubscriptionEndpoint(t *testing.T) {
	m := loadTerraform(t)
	password := strings.Repeat("Ab9._~-", 6)
	if failed := validate(t, m, "webhook_passwords", cty.MapVal(map[string]cty.Value{"2025-07": cty.StringVal(password)})); len(failed) > 0 {
		t.Fatalf("the test password is refused: %q", failed)
	}
	_, path := variable(t, m, "webhook_path")
	_, user := variable(t, m, "webhook_username")
	vars := map[string]cty.Value{
		"var": cty.ObjectVal(map[string]cty.Value{
			"webhook_username":  user,
			"webhook_passwords": cty.MapVal(map[string]cty.Value{"2025-07": cty.StringVal(password)}),
			"webhook_host":      cty.StringVal("iamflow.example.com"),
			"webhook_path":      path,
		}),
		"each": cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal("2025-07"), "value": cty.StringVal("2025-07")}),
	}
	endpoint := resourceAttr(t, m, "oci_ons_subscription.webhook", "endpoint", vars).AsString()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := u.User.Password()
	if u.Scheme != "https" || u.User.Username() != "iamflow" || got != password || u.Host != "iamflow.example.com" || u.Path != "/v1/events" {
		t.Errorf("endpoint parses as %s user %q password ok=%v host %q path %q", u.Scheme, u.User.Username(), got == password, u.Host, u.Path)
	}
	req, _ := http.NewRequest(http.MethodPost, endpoint, nil)
	if req.URL.User != nil {
		if p, _ := req.URL.User.Password(); p != password {
			t.Error("net/http would send another password than configured")
		}
	}
	if len(endpoint) > 512 {
		t.Errorf("endpoint is %d characters; OCI allows 512", len(endpoint))
	}
	if proto := resourceAttr(t, m, "oci_ons_subscription.webhook", "protocol", nil); proto.AsString() != "CUSTOM_HTTPS" {
		t.Errorf("protocol %q, want CUSTOM_HTTPS", proto.AsString())
	}
	if m.resources["oci_ons_subscription.webhook"].Body.Attributes["for_each"] == nil {
		t.Error("one subscription per password label (for_each) is what makes rotation possible")
	}
}

// The policy statements are valid OCI policy syntax and name the secrets
// compartment by OCID (a compartment named from the tenancy would need its
// Parent:Child path).
func TestTerraformPolicyStatements(t *testing.T) {
	m := loadTerraform(t)
	_, prefix := variable(t, m, "name_prefix")
	_, pattern := variable(t, m, "secret_name_pattern")
	vars := map[string]cty.Value{
		"var": cty.ObjectVal(map[string]cty.Value{
			"secrets_compartment_ocid": cty.StringVal("ocid1.compartment.oc1..exampleuniqueid"),
			"secret_name_pattern":      pattern,
			"name_prefix":              prefix,
		}),
		"oci_identity_dynamic_group": cty.ObjectVal(map[string]cty.Value{
			"iamflow": cty.TupleVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"name": prefix})}),
		}),
	}
	stmts := resourceAttr(t, m, "oci_identity_policy.iamflow_secrets", "statements", vars)
	syntax := regexp.MustCompile(`^allow dynamic-group [A-Za-z0-9_.-]+ to (inspect|read|use|manage) [a-z-]+ in (tenancy|compartment id ocid1\.(compartment|tenancy)\.\S+)( where .+)?$`)
	n := 0
	for it := stmts.ElementIterator(); it.Next(); n++ {
		_, s := it.Element()
		if !syntax.MatchString(s.AsString()) {
			t.Errorf("policy statement %q does not match %s", s.AsString(), syntax)
		}
	}
	if n == 0 {
		t.Error("no policy statement")
	}
}

// The event types the rule asks for are the ones docs/oci-setup.md lists, and
// ingest classifies every one of them as an identity change.
func TestTerraformEventTypes(t *testing.T) {
	m := loadTerraform(t)
	_, types := variable(t, m, "event_types")
	var fromTF []string
	for it := types.ElementIterator(); it.Next(); {
		_, v := it.Element()
		fromTF = append(fromTF, v.AsString())
	}
	cond := resourceAttr(t, m, "oci_events_rule.identity", "condition", map[string]cty.Value{
		"var": cty.ObjectVal(map[string]cty.Value{"event_types": types}),
	})
	var rule struct {
		EventType []string `json:"eventType"`
	}
	if err := json.Unmarshal([]byte(cond.AsString()), &rule); err != nil || !slices.Equal(rule.EventType, fromTF) {
		t.Errorf("rule condition %s (%v), want eventType %q", cond.AsString(), err, fromTF)
	}

	doc, err := os.ReadFile(filepath.Join("..", "docs", "oci-setup.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```json\n(\\{\\s*\"eventType\".*?)```").FindSubmatch(doc)
	if block == nil {
		t.Fatal("docs/oci-setup.md has no ```json block with the eventType condition")
	}
	if err := json.Unmarshal(block[1], &rule); err != nil {
		t.Fatalf("docs/oci-setup.md's condition is not JSON: %v", err)
	}
	a, b := slices.Clone(rule.EventType), slices.Clone(fromTF)
	sort.Strings(a)
	sort.Strings(b)
	if !slices.Equal(a, b) {
		t.Errorf("docs/oci-setup.md lists %q\nthe Terraform asks for %q", a, b)
	}

	for i, typ := range fromTF {
		body := fmt.Sprintf(`{"eventType":%q,"cloudEventsVersion":"0.1","eventID":"ev-%d","eventTime":"2025-03-16T12:00:00Z",
			"data":{"resourceName":"jane","additionalDetails":{"domainName":"Default","adminResourceId":"a1","adminResourceName":"jane",
			"adminResourceType":"User","adminRefResourceId":"u1","adminRefResourceName":"jane","adminRefResourceType":"User",
			"adminValuesAdded":{"members":[{"value":"u1"}],"displayName":"g"}}}}`, typ, i)
		batch, err := ingest.Parse(http.Header{}, []byte(body), time.Now())
		if err != nil || len(batch.Events) == 0 || len(batch.Unknown) != 0 {
			t.Errorf("%s: ingest does not classify it as an identity change (%v, %+v)", typ, err, batch)
		}
	}
}
