package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
	"google.golang.org/grpc"
)

func statusCommand() command {
	return command{
		name: "status", usage: "[--config FILE] [--addr HOST:PORT] [--json] [service]",
		summary: "show the status of a running iamflow",
		help: `Asks a running iamflow's admin API (gRPC) for the status of its services:
state, uptime, counters, consumers, last event and last error.

The address and token come from the configuration (admin.grpc_addr,
admin.token); --addr overrides the address. With no configuration the token
is read from $IAMFLOW_ADMIN_TOKEN if set (dev mode needs none).`,
		run: func(ctx context.Context, e *env, args []string) error {
			fs := newFlags(e, "status")
			af := newAdminFlags(e, fs, "print the status as JSON", 5*time.Second, "how long to wait for an answer")
			if err := parse(fs, args); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, *af.timeout) // the timeout covers the dial too
			defer cancel()
			req := &iamflowv1.GetStatusRequest{Service: fs.Arg(0)}
			return callAdmin(ctx, e, af, "status", func(ctx context.Context, cc grpc.ClientConnInterface) (*iamflowv1.GetStatusResponse, error) {
				return iamflowv1.NewStatusServiceClient(cc).GetStatus(ctx, req)
			}, func(resp *iamflowv1.GetStatusResponse) error {
				printStatus(e.stdout, resp, time.Now())
				return nil
			})
		},
	}
}

// printStatus writes the status as a table, then each service's counters and consumers.
func printStatus(w io.Writer, resp *iamflowv1.GetStatusResponse, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tVERSION\tUPTIME\tLAST EVENT\tLAST ERROR")
	for _, s := range resp.GetServices() {
		last := "-"
		if s.GetLastEventId() != "" {
			last = fmt.Sprintf("%s (%s ago)", s.GetLastEventId(), now.Sub(s.GetLastEventTime().AsTime()).Round(time.Second))
		}
		lastErr := "-"
		if s.GetLastError() != "" {
			lastErr = fmt.Sprintf("%s (%s ago)", s.GetLastError(), now.Sub(s.GetLastErrorTime().AsTime()).Round(time.Second))
		}
		state := strings.ToLower(strings.TrimPrefix(s.GetState().String(), "STATE_"))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.GetName(), state, s.GetVersion(), s.GetUptime().AsDuration(), last, lastErr)
	}
	tw.Flush()
	for _, s := range resp.GetServices() {
		if len(s.GetCounters()) > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(s.GetCounters())) {
				parts = append(parts, fmt.Sprintf("%s=%d", k, s.GetCounters()[k]))
			}
			fmt.Fprintf(w, "\n%s counters: %s\n", s.GetName(), strings.Join(parts, " "))
		}
		for _, c := range s.GetConsumers() {
			fmt.Fprintf(w, "%s consumer %s/%s: delivered=%d ack_pending=%d pending=%d redelivered=%d dead_lettered=%d\n",
				s.GetName(), c.GetStream(), c.GetName(), c.GetDelivered(), c.GetAckPending(), c.GetPending(), c.GetRedelivered(), c.GetDeadLettered())
		}
	}
}
