package apiclient

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/iamflow/iamflow/internal/telemetry"
)

func TestOptionsDefaultsKeepWhatIsSet(t *testing.T) {
	var o Options
	o.Defaults()
	if o.Logger == nil || o.Registerer == nil || o.Sleep == nil {
		t.Fatalf("defaults left something unset: %+v", o)
	}
	tel := telemetry.Noop()
	o = Options{Telemetry: tel}
	o.Defaults()
	if o.Logger != tel.Logger {
		t.Fatal("the telemetry's logger is not the default")
	}
}

func TestHTTPClientFollowsNoRedirectAndUsesTheTransportSet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	made := false
	c := Options{}.HTTPClient(func() http.RoundTripper { made = true; return http.DefaultTransport })
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !made {
		t.Fatalf("status %d (want the redirect itself), default transport made %v", resp.StatusCode, made)
	}
	made = false
	Options{Transport: http.DefaultTransport}.HTTPClient(func() http.RoundTripper { made = true; return nil })
	if made {
		t.Fatal("a default transport was made although one was set")
	}
	if (Options{}).Tracer("x") == nil {
		t.Fatal("no tracer without telemetry")
	}
}
