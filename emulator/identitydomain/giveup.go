package identitydomain

import "encoding/json"

// OCI Notifications does not retry forever: a message an HTTPS subscription
// cannot take is retried (1, 2, 4, 8, 16, 32 minutes) until the
// subscription's retry duration ends, 2 hours by default, and then
// discarded (docs/oci-setup.md, "Retries and dedup";
// https://docs.oracle.com/en-us/iaas/Content/Notification/Concepts/notificationoverview.htm).
// The emulator's webhook sender retries forever by default, so a test never
// loses an event by accident; Faults.GiveUpAfter makes it drop a delivery
// after that many failed attempts instead, so a test can show what a
// receiver that was away for longer than the retry window has to repair on
// its own. A dropped delivery is counted in EventStats.GaveUp and logged with
// its event id; the write log still has the change, as OCI's audit log would.

// giveUp decides, after the delivery at the head of the queue (ev, of
// generation gen, the current one) failed for the attempts-th time with err,
// whether the sender drops it; if so it is removed from the queue, counted
// and logged. b.mu is held.
func (b *eventBus) giveUp(ev outEvent, gen uint64, attempts int, err error) bool {
	limit := b.d.faults.get().GiveUpAfter
	if limit <= 0 || attempts < limit || b.gen != gen || len(b.queue) == 0 {
		return false
	}
	b.queue = b.queue[1:]
	b.st.Pending--
	b.st.GaveUp++
	b.d.log.Warn("event delivery given up", "attempts", attempts, "err", err,
		"message_id", ev.messageID, "event_id", eventIDOf(ev.body))
	return true
}

// eventIDOf is the eventID of an event body, for logs ("" if unreadable).
func eventIDOf(body []byte) string {
	var ev struct {
		EventID string `json:"eventID"`
	}
	_ = json.Unmarshal(body, &ev)
	return ev.EventID
}
