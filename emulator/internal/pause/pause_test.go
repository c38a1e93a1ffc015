package pause

import (
	"context"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want bool
	}{
		{"no wait", context.Background(), 0, true},
		{"negative wait", context.Background(), -time.Second, true},
		{"no wait on an ended context", done, 0, true},
		{"short wait", context.Background(), time.Millisecond, true},
		{"ended context", done, time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := For(tt.ctx, tt.d); got != tt.want {
				t.Errorf("For(%v) = %v, want %v", tt.d, got, tt.want)
			}
		})
	}
}

// TestForEndsWithTheContext: a wait far longer than the test returns false
// as soon as its context is cancelled from elsewhere.
func TestForEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan bool, 1)
	go func() { got <- For(ctx, time.Hour) }()
	cancel()
	select {
	case ok := <-got:
		if ok {
			t.Error("For = true after cancel, want false")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("For did not return after cancel")
	}
}
