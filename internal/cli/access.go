package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

const accessHelpTail = `
People call these with their login ('iamflow login'); the server decides from
the access policy (expiry.access.policies, docs/access-policy.md) who may ask
for which group, who approves and for how long. With the admin token you act
as an operator, who may decide any request and request for any user (--user).

Exit status: 0 done, 1 refused or failed (the message says why), 2 usage.`

func requestCommand() command {
	return command{
		name:    "request",
		usage:   "[GROUP --for 2h --reason R [--ticket T] [--domain D]]",
		summary: "ask for temporary membership of a group (without GROUP: what you may ask for)",
		help: `Asks for temporary membership of GROUP, decided by the group's approvers
(or at once, if the policy auto-approves you); an approved request becomes a
grant that ends by itself:

  iamflow request OCI-Temp-Admins --for 2h --reason "INC-123 disk full" --ticket INC-123

--for defaults to the policy's default duration. Without GROUP, lists the
groups you may request and what each policy asks of you.
` + accessHelpTail,
		run: runRequest,
	}
}

func requestsCommand() command {
	return command{
		name:    "requests",
		usage:   "[--waiting | --all] [--state pending] [--json]",
		summary: "list access requests: yours, those waiting for your decision, or all",
		help: `Lists access requests, newest first: yours by default; --waiting those you
may approve or deny; --all every request (operators).
` + accessHelpTail,
		run: runRequests,
	}
}

func approveCommand() command {
	return command{
		name: "approve", usage: "ID [--reason R]", summary: "approve an access request waiting for you",
		help: "Approves request ID; with the approvals the policy wants, the grant is made at once.\n" + accessHelpTail,
		run:  func(ctx context.Context, e *env, args []string) error { return runDecision(ctx, e, "approve", args) },
	}
}

func denyCommand() command {
	return command{
		name: "deny", usage: "ID --reason R", summary: "deny an access request waiting for you",
		help: "Denies request ID; the requester is told why.\n" + accessHelpTail,
		run:  func(ctx context.Context, e *env, args []string) error { return runDecision(ctx, e, "deny", args) },
	}
}

func cancelCommand() command {
	return command{
		name: "cancel", usage: "ID [--reason R]", summary: "withdraw your pending access request",
		help: "Withdraws request ID while it waits for a decision.\n" + accessHelpTail,
		run:  func(ctx context.Context, e *env, args []string) error { return runDecision(ctx, e, "cancel", args) },
	}
}

// callAccess dials the admin API, makes one AccessService call and prints
// its answer as JSON or with show.
func callAccess(ctx context.Context, e *env, gf adminFlags, op string,
	call func(context.Context, iamflowv1.AccessServiceClient) (proto.Message, error), show func(io.Writer, proto.Message)) error {
	return callAdmin(ctx, e, gf, op, func(ctx context.Context, cc grpc.ClientConnInterface) (proto.Message, error) {
		return call(ctx, iamflowv1.NewAccessServiceClient(cc))
	}, func(resp proto.Message) error {
		show(e.stdout, resp)
		return nil
	})
}

func runRequest(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "request")
	gf := newGrantFlags(e, fs)
	domain := fs.String("domain", "", "the group's domain (needed only when two policies name the same group)")
	dur := fs.Duration("for", 0, "how long (default: the policy's default duration)")
	reason := fs.String("reason", "", "why you need it")
	ticket := fs.String("ticket", "", "the ticket the work is for (e.g. INC-123)")
	usr := fs.String("user", "", "operators: the user the request is for")
	var group string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		group, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if group == "" && fs.NArg() > 0 {
		group = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *dur < 0 {
		return fmt.Errorf("%w: --for %v is negative", errUsage, *dur)
	}
	if group == "" {
		return callAccess(ctx, e, gf, "request", func(ctx context.Context, c iamflowv1.AccessServiceClient) (proto.Message, error) {
			return c.ListEligibility(ctx, &iamflowv1.ListEligibilityRequest{})
		}, func(w io.Writer, m proto.Message) {
			printEligibility(w, m.(*iamflowv1.ListEligibilityResponse).GetGroups())
		})
	}
	req := &iamflowv1.RequestAccessRequest{Domain: *domain, Group: group, Reason: *reason, Ticket: *ticket, User: *usr}
	if *dur > 0 {
		req.Duration = durationpb.New(*dur)
	}
	return callAccess(ctx, e, gf, "request "+group, func(ctx context.Context, c iamflowv1.AccessServiceClient) (proto.Message, error) {
		r, err := c.RequestAccess(ctx, req)
		return r.GetRequest(), err
	}, func(w io.Writer, m proto.Message) { printRequestOutcome(w, m.(*iamflowv1.AccessRequest), time.Now()) })
}

func runRequests(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "requests")
	gf := newGrantFlags(e, fs)
	waiting := fs.Bool("waiting", false, "requests waiting for your decision")
	all := fs.Bool("all", false, "every request (operators)")
	state := fs.String("state", "", "only requests in this state: pending, approved, active, denied, expired, cancelled, ended, revoked, failed")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	req := &iamflowv1.ListRequestsRequest{View: iamflowv1.RequestView_REQUEST_VIEW_MINE}
	switch {
	case *waiting && *all:
		return fmt.Errorf("%w: give --waiting or --all, not both", errUsage)
	case *waiting:
		req.View = iamflowv1.RequestView_REQUEST_VIEW_WAITING_FOR_ME
	case *all:
		req.View = iamflowv1.RequestView_REQUEST_VIEW_ALL
	}
	if *state != "" {
		v, ok := iamflowv1.RequestState_value["REQUEST_STATE_"+strings.ToUpper(*state)]
		if !ok || v == 0 {
			return fmt.Errorf("%w: --state %q is not a request state (pending, approved, active, denied, expired, cancelled, ended, revoked, failed)", errUsage, *state)
		}
		req.States = []iamflowv1.RequestState{iamflowv1.RequestState(v)}
	}
	return callAccess(ctx, e, gf, "requests", func(ctx context.Context, c iamflowv1.AccessServiceClient) (proto.Message, error) {
		return c.ListRequests(ctx, req)
	}, func(w io.Writer, m proto.Message) {
		rs := m.(*iamflowv1.ListRequestsResponse).GetRequests()
		if len(rs) == 0 {
			fmt.Fprintln(w, "No requests.")
			return
		}
		printRequests(w, rs, time.Now())
	})
}

// runDecision is approve, deny and cancel.
func runDecision(ctx context.Context, e *env, verb string, args []string) error {
	fs := newFlags(e, verb)
	gf := newGrantFlags(e, fs)
	reason := fs.String("reason", "", "why")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	if verb == "deny" && strings.TrimSpace(*reason) == "" {
		return fmt.Errorf("%w: a denial needs --reason (the requester is told why)", errUsage)
	}
	return callAccess(ctx, e, gf, verb+" "+id, func(ctx context.Context, c iamflowv1.AccessServiceClient) (proto.Message, error) {
		switch verb {
		case "approve":
			r, err := c.ApproveRequest(ctx, &iamflowv1.ApproveRequestRequest{Id: id, Reason: *reason})
			return r.GetRequest(), err
		case "deny":
			r, err := c.DenyRequest(ctx, &iamflowv1.DenyRequestRequest{Id: id, Reason: *reason})
			return r.GetRequest(), err
		default:
			r, err := c.CancelRequest(ctx, &iamflowv1.CancelRequestRequest{Id: id, Reason: *reason})
			return r.GetRequest(), err
		}
	}, func(w io.Writer, m proto.Message) { printRequestOutcome(w, m.(*iamflowv1.AccessRequest), time.Now()) })
}

func requestState(s iamflowv1.RequestState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "REQUEST_STATE_"))
}

// printRequestOutcome says in a sentence where a request stands, then
// shows it as a one-row table.
func printRequestOutcome(w io.Writer, r *iamflowv1.AccessRequest, now time.Time) {
	switch r.GetState() {
	case iamflowv1.RequestState_REQUEST_STATE_PENDING:
		given := 0
		for _, d := range r.GetDecisions() {
			if d.GetApproved() {
				given++
			}
		}
		fmt.Fprintf(w, "Request %s for %s is waiting for approval (%d of %d), until %s.\n", r.GetId(), r.GetGroup(),
			given, r.GetApprovalsRequired(), r.GetDecideBy().AsTime().Local().Format(time.Kitchen))
	case iamflowv1.RequestState_REQUEST_STATE_ACTIVE:
		fmt.Fprintf(w, "Granted: %s is a member of %s in %s until %s (in %s; grant %s).\n", r.GetUserName(), r.GetGroup(), r.GetDomain(),
			r.GetExpiresAt().AsTime().Local().Format(time.Kitchen), r.GetExpiresAt().AsTime().Sub(now).Round(time.Second), r.GetGrantId())
	case iamflowv1.RequestState_REQUEST_STATE_FAILED:
		fmt.Fprintf(w, "Approved, but the grant failed: %s\n", r.GetLastError())
	default:
		fmt.Fprintf(w, "Request %s is %s.\n", r.GetId(), requestState(r.GetState()))
	}
	printRequests(w, []*iamflowv1.AccessRequest{r}, now)
}

// printRequests writes requests as a table.
func printRequests(w io.Writer, rs []*iamflowv1.AccessRequest, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tDOMAIN\tGROUP\tUSER\tFOR\tWHEN\tDECIDED BY\tTICKET\tREASON")
	for _, r := range rs {
		when := ""
		switch r.GetState() {
		case iamflowv1.RequestState_REQUEST_STATE_PENDING:
			when = "decide within " + r.GetDecideBy().AsTime().Sub(now).Round(time.Second).String()
		case iamflowv1.RequestState_REQUEST_STATE_ACTIVE:
			when = "ends in " + r.GetExpiresAt().AsTime().Sub(now).Round(time.Second).String()
		default:
			if r.GetEndedAt() != nil {
				when = "ended " + r.GetEndedAt().AsTime().UTC().Format(time.RFC3339)
			}
		}
		var by []string
		for _, d := range r.GetDecisions() {
			by = append(by, d.GetBy())
		}
		kind := r.GetDuration().AsDuration().String()
		if r.GetExtension() {
			kind += " (extension)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.GetId(), requestState(r.GetState()), r.GetDomain(), r.GetGroup(),
			r.GetUserName(), kind, when, orDash(strings.Join(by, ", ")), orDash(r.GetTicket()), orDash(r.GetReason()))
	}
	tw.Flush()
}

// printEligibility writes what the caller may request.
func printEligibility(w io.Writer, es []*iamflowv1.Eligibility) {
	if len(es) == 0 {
		fmt.Fprintln(w, "No access policy lets you request a group.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tGROUP\tDEFAULT\tMAX\tAPPROVALS\tNEEDS")
	for _, e := range es {
		var needs []string
		if e.GetJustificationRequired() {
			needs = append(needs, "--reason")
		}
		if e.GetTicketRequired() {
			t := "--ticket"
			if e.GetTicketPattern() != "" {
				t += " " + e.GetTicketPattern()
			}
			needs = append(needs, t)
		}
		approvals := fmt.Sprint(e.GetApprovalsRequired())
		if e.GetAutoApproved() {
			approvals = "auto-approved"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.GetDomain(), e.GetGroup(), e.GetDefaultDuration().AsDuration(),
			e.GetMaxDuration().AsDuration(), approvals, orDash(strings.Join(needs, ", ")))
	}
	tw.Flush()
}

// orDash is s, or "-" when s is empty, for table cells.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
