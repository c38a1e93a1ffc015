package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	iamflowv1 "github.com/iamflow/iamflow/gen/iamflow/v1"
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
			cfgPath := configFlag(e, fs)
			addr := fs.String("addr", "", "admin gRPC address (default admin.grpc_addr, 127.0.0.1:9090)")
			asJSON := fs.Bool("json", false, "print the status as JSON")
			timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for an answer")
			if err := parse(fs, args); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, *timeout)
			defer cancel()
			conn, err := dialAdmin(ctx, e, *cfgPath, *addr)
			if err != nil {
				return err
			}
			defer conn.Close()
			resp, err := iamflowv1.NewStatusServiceClient(conn).GetStatus(ctx, &iamflowv1.GetStatusRequest{Service: fs.Arg(0)})
			if err != nil {
				return conn.explain("status", err)
			}
			if *asJSON {
				b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(resp)
				if err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, string(b))
				return nil
			}
			printStatus(e.stdout, resp, time.Now())
			return nil
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
			for _, k := range sortedKeys(s.GetCounters()) {
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
