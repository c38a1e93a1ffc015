package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
)

func grantCommand() command {
	return command{
		name:    "grant",
		usage:   "add|extend|revoke|list [flags]",
		summary: "grant, extend, revoke and list temporary group memberships",
		subcommands: []subcommand{
			{name: "add", usage: "--domain D --group G --user U (--for 2h | --until RFC3339) --reason R [--requester NAME]",
				summary: "Adds the user to the temporary group until the deadline (the group's default duration without --for or --until)."},
			{name: "extend", usage: "ID (--for 2h | --until RFC3339) [--reason R]", summary: "Moves an open grant's deadline."},
			{name: "revoke", usage: "ID [--reason R]", summary: "Ends a grant now: the membership is removed."},
			{name: "list", usage: "[--state active] [--domain D] [--group G] [--user U] [--json]", summary: "Lists grants, newest first."},
		},
		help: `Temporary group memberships (the expiry service), through a running
iamflow's admin API (gRPC):

  iamflow grant add --domain D --group G --user U (--for 2h | --until RFC3339) --reason R [--requester NAME]
  iamflow grant extend ID (--for 2h | --until RFC3339) [--reason R]
  iamflow grant revoke ID [--reason R]
  iamflow grant list [--state active] [--domain D] [--group G] [--user U] [--json]

--for counts from now; neither --for nor --until on add means the group's
default duration. The requester defaults to the local user name.

The address and token come from the configuration (admin.grpc_addr,
admin.token); --addr overrides the address. With no configuration the token
is read from $IAMFLOW_ADMIN_TOKEN if set (dev mode needs none).`,
		run: runGrant,
	}
}

// newGrantFlags defines the flags every grant and access subcommand takes.
func newGrantFlags(e *env, fs *flag.FlagSet) adminFlags {
	return newAdminFlags(e, fs, "print the answer as JSON", 30*time.Second, "how long to wait for an answer")
}

// parseWithID parses args, taking the first argument that is not a flag as
// the grant id wherever it stands.
func parseWithID(fs *flag.FlagSet, args []string) (string, error) {
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return "", err
	}
	if id == "" {
		id = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return "", fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if id == "" {
		return "", fmt.Errorf("%w: give the grant id", errUsage)
	}
	return id, nil
}

func runGrant(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: give a subcommand: add, extend, revoke or list (iamflow grant --help)", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := newFlags(e, "grant "+sub)
	gf := newGrantFlags(e, fs)
	var call grantCall
	var err error
	switch sub {
	case "add":
		call, err = grantAdd(e, fs, args)
	case "extend":
		call, err = grantExtend(e, fs, args)
	case "revoke":
		call, err = grantRevoke(e, fs, args)
	case "list":
		call, err = grantList(fs, args)
	default:
		return fmt.Errorf("%w: unknown grant subcommand %q: give add, extend, revoke or list", errUsage, sub)
	}
	if err != nil {
		return err
	}

	return callAdmin(ctx, e, gf, "grant "+sub, func(ctx context.Context, cc grpc.ClientConnInterface) (proto.Message, error) {
		return call(ctx, iamflowv1.NewExpiryServiceClient(cc))
	}, func(resp proto.Message) error {
		switch r := resp.(type) {
		case *iamflowv1.ListGrantsResponse:
			printGrants(e.stdout, r.GetGrants(), time.Now())
		case *iamflowv1.Grant:
			printGrants(e.stdout, []*iamflowv1.Grant{r}, time.Now())
		}
		return nil
	})
}

// grantCall is one grant subcommand's call to the expiry service.
type grantCall = func(context.Context, iamflowv1.ExpiryServiceClient) (proto.Message, error)

// grantAdd parses 'grant add' and returns its GrantMembership call.
func grantAdd(e *env, fs *flag.FlagSet, args []string) (grantCall, error) {
	domain := fs.String("domain", "", "the domain's short name (required)")
	group := fs.String("group", "", "the group's displayName or SCIM id (required)")
	usr := fs.String("user", "", "the user's userName or SCIM id (required)")
	dur := fs.Duration("for", 0, "how long, from now (e.g. 2h)")
	until := fs.String("until", "", "the deadline, RFC 3339 (e.g. 2026-11-22T18:00:00Z)")
	reason := fs.String("reason", "", "why (required)")
	requester := fs.String("requester", defaultRequester(e), "who asks")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if *domain == "" || *group == "" || *usr == "" || *reason == "" {
		return nil, fmt.Errorf("%w: grant add needs --domain, --group, --user and --reason", errUsage)
	}
	req := &iamflowv1.GrantMembershipRequest{Domain: *domain, Group: *group, User: *usr, Reason: *reason, Requester: *requester}
	if err := setDeadline(*dur, *until, &req.Duration, &req.Until, false); err != nil {
		return nil, err
	}
	return grantRPC(req, iamflowv1.ExpiryServiceClient.GrantMembership), nil
}

// grantExtend parses 'grant extend ID' and returns its ExtendGrant call.
func grantExtend(e *env, fs *flag.FlagSet, args []string) (grantCall, error) {
	dur := fs.Duration("for", 0, "the new deadline, from now (e.g. 1h)")
	until := fs.String("until", "", "the new deadline, RFC 3339")
	reason := fs.String("reason", "", "why")
	requester := fs.String("requester", defaultRequester(e), "who asks")
	id, err := parseWithID(fs, args)
	if err != nil {
		return nil, err
	}
	req := &iamflowv1.ExtendGrantRequest{Id: id, Reason: *reason, Requester: *requester}
	if err := setDeadline(*dur, *until, &req.Duration, &req.Until, true); err != nil {
		return nil, err
	}
	return grantRPC(req, iamflowv1.ExpiryServiceClient.ExtendGrant), nil
}

// grantRevoke parses 'grant revoke ID' and returns its RevokeGrant call.
func grantRevoke(e *env, fs *flag.FlagSet, args []string) (grantCall, error) {
	reason := fs.String("reason", "", "why")
	requester := fs.String("requester", defaultRequester(e), "who asks")
	id, err := parseWithID(fs, args)
	if err != nil {
		return nil, err
	}
	req := &iamflowv1.RevokeGrantRequest{Id: id, Reason: *reason, Requester: *requester}
	return grantRPC(req, iamflowv1.ExpiryServiceClient.RevokeGrant), nil
}

// grantRPC is the call of rpc with req, answering the grant it returns.
func grantRPC[Req any, Resp interface{ GetGrant() *iamflowv1.Grant }](req Req,
	rpc func(iamflowv1.ExpiryServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error)) grantCall {
	return func(ctx context.Context, c iamflowv1.ExpiryServiceClient) (proto.Message, error) {
		r, err := rpc(c, ctx, req)
		return r.GetGrant(), err
	}
}

// grantList parses 'grant list' and returns a call that reads every page.
func grantList(fs *flag.FlagSet, args []string) (grantCall, error) {
	state := fs.String("state", "", "only grants in this state: pending, active, expired, revoked, failed")
	domain := fs.String("domain", "", "only this domain")
	group := fs.String("group", "", "only this group (displayName or SCIM id)")
	usr := fs.String("user", "", "only this user (userName or SCIM id)")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	req := &iamflowv1.ListGrantsRequest{Domain: *domain, Group: *group, User: *usr, PageSize: 1000}
	if *state != "" {
		v, ok := iamflowv1.GrantState_value["GRANT_STATE_"+strings.ToUpper(*state)]
		if !ok || v == 0 {
			return nil, fmt.Errorf("%w: --state %q: give pending, active, expired, revoked or failed", errUsage, *state)
		}
		req.State = iamflowv1.GrantState(v)
	}
	return func(ctx context.Context, c iamflowv1.ExpiryServiceClient) (proto.Message, error) {
		out := &iamflowv1.ListGrantsResponse{}
		for {
			r, err := c.ListGrants(ctx, req)
			if err != nil {
				return nil, err
			}
			out.Grants = append(out.Grants, r.GetGrants()...)
			if r.GetNextPageToken() == "" {
				return out, nil
			}
			req.PageToken = r.GetNextPageToken()
		}
	}, nil
}

// setDeadline fills a request's duration or until from --for and --until.
func setDeadline(d time.Duration, until string, dur **durationpb.Duration, ts **timestamppb.Timestamp, required bool) error {
	switch {
	case d != 0 && until != "":
		return fmt.Errorf("%w: give --for or --until, not both", errUsage)
	case d < 0:
		return fmt.Errorf("%w: --for %v is negative", errUsage, d)
	case d > 0:
		*dur = durationpb.New(d)
	case until != "":
		t, err := time.Parse(time.RFC3339, until)
		if err != nil {
			return fmt.Errorf("%w: --until %q is not an RFC 3339 time such as 2026-11-22T18:00:00Z", errUsage, until)
		}
		*ts = timestamppb.New(t)
	case required:
		return fmt.Errorf("%w: give the new deadline with --for or --until", errUsage)
	}
	return nil
}

// defaultRequester is $USER, else the OS user name.
func defaultRequester(e *env) string {
	if u, ok := e.getenv("USER"); ok && u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// printGrants writes grants as a table.
func printGrants(w io.Writer, gs []*iamflowv1.Grant, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tDOMAIN\tGROUP\tUSER\tEXPIRES\tREQUESTER\tSOURCE\tREASON")
	for _, g := range gs {
		state := strings.ToLower(strings.TrimPrefix(g.GetState().String(), "GRANT_STATE_"))
		if g.GetOverdue() {
			state += " (overdue)"
		}
		exp := g.GetExpiresAt().AsTime()
		when := exp.UTC().Format(time.RFC3339)
		if g.GetState() == iamflowv1.GrantState_GRANT_STATE_ACTIVE || g.GetState() == iamflowv1.GrantState_GRANT_STATE_PENDING {
			if left := exp.Sub(now); left > 0 {
				when += fmt.Sprintf(" (in %s)", left.Round(time.Second))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.GetId(), state, g.GetDomain(), g.GetGroupName(),
			g.GetUserName(), when, g.GetRequester(), g.GetSource(), g.GetReason())
		if g.GetLastError() != "" {
			fmt.Fprintf(tw, "\t\t\t\t\tlast error: %s\t\t\t\n", g.GetLastError())
		}
	}
	tw.Flush()
}
