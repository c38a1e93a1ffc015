package pipelinetest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/iamflow/iamflow/internal/admin"
	"github.com/iamflow/iamflow/internal/secret"
	"github.com/iamflow/iamflow/internal/servicekit"
)

// AdminAPI serves ep on a real admin server, gRPC and REST on random
// ports, with st's status under name when st is not nil; the server stops
// when the test ends. It returns a gRPC connection to it and the REST base
// URL (http://host:port).
func AdminAPI(t testing.TB, ep servicekit.Endpoint, name string, st admin.StatusProvider) (*grpc.ClientConn, string) {
	t.Helper()
	srv, err := admin.New(admin.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ep.ServeOn(srv); err != nil {
		t.Fatal(err)
	}
	if st != nil {
		srv.AddStatus(name, st)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	conn, err := admin.Dial(context.Background(), srv.GRPCAddr().String(), secret.Value{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, "http://" + srv.HTTPAddr().String()
}

// REST calls url with body as JSON and decodes a 200 answer into out (when
// not nil); another status is logged. It returns the status and the body.
func REST(t testing.TB, method, url, body string, out proto.Message) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := protojson.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, data)
		}
	} else if resp.StatusCode != http.StatusOK {
		t.Logf("%s %s: %d %s", method, url, resp.StatusCode, data)
	}
	return resp.StatusCode, string(data)
}
