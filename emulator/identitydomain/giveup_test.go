package identitydomain_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/iamflow/iamflow/emulator/identitydomain"
)

// A delivery that fails GiveUpAfter times is dropped, counted and not
// retried; the next event is delivered normally; 0 retries until delivered.
func TestEventsGivenUpAfterFailures(t *testing.T) {
	w := newWebhook(t)
	w.failNext = 3 // the first event's three attempts
	cfg := webhookConfig(w.URL)
	cfg.Faults.GiveUpAfter = 3
	d := start(t, cfg)
	tok := getToken(t, d)
	mustCreate(t, d, tok, "Users", userBody("lost@example.com"))
	mustCreate(t, d, tok, "Users", userBody("kept@example.com"))
	waitDelivered(t, d, w, 1)
	var names []string
	for _, ev := range w.events(t) {
		names = append(names, ev.Data.ResourceName)
	}
	if !slices.Equal(names, []string{"kept@example.com"}) {
		t.Errorf("delivered %v, want only kept@example.com (the first was given up)", names)
	}
	if st := d.EventStats(); st.GaveUp != 1 || st.Failed != 3 || st.Delivered != 1 || st.Pending != 0 || st.Emitted != 2 {
		t.Errorf("stats = %+v, want 1 given up after 3 failed attempts, 1 delivered", st)
	}
	w.mu.Lock()
	attempts := w.attempts
	w.mu.Unlock()
	if attempts != 4 {
		t.Errorf("webhook saw %d attempts, want 3 for the dropped event and 1 for the next", attempts)
	}
	// The write log keeps the change whose event was dropped.
	if l := d.Writes(0); len(l.Writes) != 2 {
		t.Errorf("write log has %d entries, want both creates", len(l.Writes))
	}

	// Switched off at run time (POST /_emulator/faults): retried until delivered.
	setFaults(t, d, `{"giveUpAfter": 0}`)
	w.mu.Lock()
	w.failNext = 5
	w.mu.Unlock()
	mustCreate(t, d, tok, "Users", userBody("patient@example.com"))
	waitDelivered(t, d, w, 2)
	if st := d.EventStats(); st.GaveUp != 1 || st.Failed != 8 {
		t.Errorf("stats = %+v, want the delivery retried 5 times and not given up", st)
	}
}

func TestGiveUpAfterValidated(t *testing.T) {
	d := start(t, baseConfig())
	if err := d.SetFaults(identitydomain.Faults{GiveUpAfter: -1}); err == nil {
		t.Fatal("SetFaults accepted giveUpAfter -1")
	}
	resp, err := http.Post(d.URL()+"/_emulator/faults", "application/json", bytes.NewBufferString(`{"giveUpAfter": -2}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST /_emulator/faults giveUpAfter -2: %s, want 400", resp.Status)
	}
}

func setFaults(t *testing.T, d *identitydomain.Domain, body string) {
	t.Helper()
	resp, err := http.Post(d.URL()+"/_emulator/faults", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var f identitydomain.Faults
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /_emulator/faults %s: %s, %v", body, resp.Status, err)
	}
}
