package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"google.golang.org/grpc"
)

func reconcileCommand() command {
	return command{
		name:    "reconcile",
		usage:   "LINK [--dry-run] [--json]",
		summary: "fully reconcile a replication link now, or print its plan (--dry-run)",
		help: `Runs a full reconcile of one replication link (every target and direction)
through a running iamflow's admin API and prints what it did, one action a
line. With --dry-run nothing changes: the plan is printed instead.

  iamflow reconcile hub-to-spokes --dry-run

Deletions the mass-deletion guard holds are marked HELD; approve or reject
them with POST /v1/replicator/holds/{id}:approve or :reject (GET
/v1/replicator/holds lists them).

The address and token come from the configuration (admin.grpc_addr,
admin.token); --addr overrides the address.`,
		run: runReconcile,
	}
}

func runReconcile(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "reconcile")
	af := newAdminFlags(e, fs, "print the answer as JSON", time.Hour, "how long to wait for the reconcile to finish")
	dryRun := fs.Bool("dry-run", false, "plan only: print what would change, change nothing")
	link, err := parseWithArg(fs, args, "the link's name")
	if err != nil {
		return err
	}
	req := &iamflowv1.ReconcileRequest{Link: link, DryRun: *dryRun}
	return callAdmin(ctx, e, af, "reconcile "+link, func(ctx context.Context, cc grpc.ClientConnInterface) (*iamflowv1.ReconcileResponse, error) {
		return iamflowv1.NewReplicatorServiceClient(cc).Reconcile(ctx, req)
	}, func(resp *iamflowv1.ReconcileResponse) error {
		failed := 0
		for _, r := range resp.GetReports() {
			printReport(e.stdout, r)
			if r.GetError() != "" {
				failed++
			}
		}
		if failed > 0 {
			return fmt.Errorf("reconcile %s: %d of %d directions failed", link, failed, len(resp.GetReports()))
		}
		return nil
	})
}

// parseWithArg parses args, taking the one argument that is not a flag,
// wherever it stands.
func parseWithArg(fs *flag.FlagSet, args []string, what string) (string, error) {
	var arg string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		arg, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return "", err
	}
	switch {
	case arg == "" && fs.NArg() == 1:
		arg = fs.Arg(0)
	case fs.NArg() > 0:
		return "", fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if arg == "" {
		return "", fmt.Errorf("%w: give %s", errUsage, what)
	}
	return arg, nil
}

// printReport prints one direction's reconcile: a summary line, then the
// actions as a table.
func printReport(w io.Writer, r *iamflowv1.ReconcileReport) {
	mode := "reconciled"
	if r.GetDryRun() {
		mode = "plan (dry run, nothing changed)"
	}
	took := r.GetFinishedAt().AsTime().Sub(r.GetStartedAt().AsTime()).Round(time.Millisecond)
	fmt.Fprintf(w, "%s %s -> %s: %s in %v; source %s, %s; target %s, %s\n",
		r.GetLink(), r.GetSource(), r.GetTarget(), mode, took,
		plural(int(r.GetSourceUsers()), "user"), plural(int(r.GetSourceGroups()), "group"),
		plural(int(r.GetTargetUsers()), "user"), plural(int(r.GetTargetGroups()), "group"))
	if r.GetError() != "" {
		fmt.Fprintf(w, "  ERROR: %s\n", r.GetError())
	}
	kinds := make([]string, 0, len(r.GetActions()))
	for k := range r.GetActions() {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	counts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		counts = append(counts, fmt.Sprintf("%s %d", k, r.GetActions()[k]))
	}
	if len(counts) == 0 {
		fmt.Fprintln(w, "  in sync: nothing to do")
		return
	}
	fmt.Fprintf(w, "  actions: %s", strings.Join(counts, ", "))
	if n := int(r.GetHeldDeletions()); n > 0 {
		fmt.Fprintf(w, "; %s HELD for approval", plural(n, "deletion"))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ACTION\tENTITY\tNAME\tDETAIL\tREASON")
	for _, a := range r.GetPlanned() {
		kind := a.GetKind()
		if a.GetHeld() {
			kind += " (HELD)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", kind, a.GetEntity(), a.GetName(), detail(a), reason(a))
	}
	_ = tw.Flush()
	if r.GetTruncated() {
		fmt.Fprintln(w, "  ... more actions not listed (see the counts above, or --json)")
	}
}

// defaultReasons say why an action of each kind is needed when the
// replicator gives no reason of its own (it explains skips, adoptions and
// removals; the rest follow from what the kind is).
var defaultReasons = map[string]string{
	"create_user":   "not in the target",
	"create_group":  "not in the target",
	"update_user":   "differs from the source",
	"update_group":  "differs from the source",
	"add_member":    "a member in the source, not in the target",
	"remove_member": "not a member in the source",
}

func reason(a *iamflowv1.PlannedAction) string {
	return firstNonEmpty(a.GetReason(), defaultReasons[a.GetKind()])
}

// detail renders an action's changes or member, by name where it is known.
func detail(a *iamflowv1.PlannedAction) string {
	var parts []string
	if m := firstNonEmpty(a.GetMemberName(), a.GetMemberTargetId(), a.GetMemberSourceId()); m != "" {
		parts = append(parts, "member "+m)
	}
	for _, c := range a.GetChanges() {
		if c.GetBefore() == "" {
			parts = append(parts, fmt.Sprintf("%s=%q", c.GetAttribute(), c.GetAfter()))
		} else {
			parts = append(parts, fmt.Sprintf("%s: %q -> %q", c.GetAttribute(), c.GetBefore(), c.GetAfter()))
		}
	}
	return strings.Join(parts, "; ")
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
