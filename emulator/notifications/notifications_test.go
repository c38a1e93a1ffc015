package notifications_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/ons"

	"github.com/iamflow/iamflow/emulator/notifications"
)

const topic = "ocid1.onstopic.oc1.iad.aaaaaaaaiamflowtest"

// sdkClient is the oci-go-sdk's own client, signing with a throwaway key,
// pointed at the emulator.
func sdkClient(t *testing.T, url string) ons.NotificationDataPlaneClient {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	cp := common.NewRawConfigurationProvider("ocid1.tenancy.oc1..t", "ocid1.user.oc1..u", "us-ashburn-1",
		"00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00", string(pemKey), nil)
	c, err := ons.NewNotificationDataPlaneClientWithConfigurationProvider(cp)
	if err != nil {
		t.Fatal(err)
	}
	c.Host = url
	noRetry := common.NoRetryPolicy()
	c.Configuration.RetryPolicy = &noRetry
	return c
}

func start(t *testing.T) *notifications.Emulator {
	t.Helper()
	e, err := notifications.New(notifications.Config{Topics: []notifications.Topic{{ID: topic, Name: "iamflow-access"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func publish(c ons.NotificationDataPlaneClient, topicID, title, body string) (ons.PublishMessageResponse, error) {
	return c.PublishMessage(context.Background(), ons.PublishMessageRequest{TopicId: &topicID,
		MessageDetails: ons.MessageDetails{Title: &title, Body: &body}})
}

// The SDK's own client publishes, and the emulator keeps the message.
func TestPublishWithTheSDK(t *testing.T) {
	e := start(t)
	c := sdkClient(t, e.URL())
	resp, err := publish(c, topic, "Access request", "alice asks for OCI-Temp-Admins for 2h")
	if err != nil {
		t.Fatal(err)
	}
	if resp.MessageId == nil || *resp.MessageId == "" {
		t.Fatalf("no message id: %+v", resp)
	}
	ms := e.Messages(topic)
	if len(ms) != 1 || ms[0].Title != "Access request" || ms[0].ID != *resp.MessageId {
		t.Fatalf("messages %+v", ms)
	}
}

// What the service refuses, the emulator refuses, in OCI's error shape the
// SDK reads.
func TestPublishRefusals(t *testing.T) {
	e := start(t)
	c := sdkClient(t, e.URL())
	status := func(err error) (int, string) {
		se, ok := common.IsServiceError(err)
		if !ok {
			t.Fatalf("not a service error: %v", err)
		}
		return se.GetHTTPStatusCode(), se.GetCode()
	}
	if _, err := publish(c, "ocid1.onstopic.oc1.iad.nosuch", "t", "b"); err == nil {
		t.Error("unknown topic accepted")
	} else if s, code := status(err); s != http.StatusNotFound || code != "NotAuthorizedOrNotFound" {
		t.Errorf("unknown topic: %d %s", s, code)
	}
	if _, err := publish(c, topic, "t", strings.Repeat("x", notifications.MaxMessageBytes+1)); err == nil {
		t.Error("a message over 64 KB accepted")
	} else if s, _ := status(err); s != http.StatusRequestEntityTooLarge {
		t.Errorf("too large: %d", s)
	}
	e.FailNext(http.StatusTooManyRequests, http.StatusInternalServerError)
	if _, err := publish(c, topic, "t", "b"); err == nil {
		t.Error("429 not answered")
	} else if s, code := status(err); s != http.StatusTooManyRequests || code != "TooManyRequests" {
		t.Errorf("429: %d %s", s, code)
	}
	if _, err := publish(c, topic, "t", "b"); err == nil {
		t.Error("500 not answered")
	}
	if _, err := publish(c, topic, "t", "b"); err != nil {
		t.Errorf("after the faults: %v", err)
	}
	// An unsigned request is refused.
	resp, err := http.Post(e.URL()+"/20181201/topics/"+topic+"/messages", "application/json", strings.NewReader(`{"body":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned: %d, want 401", resp.StatusCode)
	}
	if n := len(e.Messages("")); n != 1 {
		t.Errorf("%d messages kept, want 1", n)
	}
	if _, err := notifications.New(notifications.Config{Topics: []notifications.Topic{{ID: "topic-1"}}}, nil); err == nil {
		t.Error("a topic id that is no OCID was accepted")
	}
}
