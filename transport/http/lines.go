package http

import (
	"encoding/json"
	"hash/maphash"
	"reflect"
	"sync/atomic"

	"github.com/0ops/exed/exe"
)

// eventLines keeps the JSON text of recent events as a follow stream
// sends them ({"host": event}), so that the followers of a job encode each
// event once between them rather than once each: with 1,000 followers
// the encoding was a quarter of the server's work per event. A slot is
// found by the event's job and Seq and used only for an event equal to the
// one it was encoded from (same fields, same output, the very same Facts
// and Extra maps), so a hit is always the text json.Marshal would write.
// Slots are overwritten freely: a miss only costs an encoding.
type eventLines struct {
	seed  maphash.Seed
	slots []atomic.Pointer[eventLine]
}

// eventLinesSlots is the number of events eventLines keeps: enough for
// the events of every job being followed at the same moment.
const eventLinesSlots = 4096

type eventLine struct {
	jid  string
	ev   exe.Event
	text []byte // never modified once stored
}

func newEventLines() eventLines {
	return eventLines{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[eventLine], eventLinesSlots)}
}

// line returns the JSON text of {ev.Host: ev} for an event of job jid,
// exactly as json.Marshal writes it. The caller must not modify it.
func (c *eventLines) line(jid string, ev exe.Event) ([]byte, error) {
	if ev.Seq <= 0 || len(c.slots) == 0 {
		return json.Marshal(map[string]exe.Event{ev.Host: ev}) // not a stored event
	}
	slot := &c.slots[(maphash.String(c.seed, jid)+uint64(ev.Seq)*0x9e3779b97f4a7c15)%uint64(len(c.slots))]
	if l := slot.Load(); l != nil && l.jid == jid && sameEvent(l.ev, ev) {
		return l.text, nil
	}
	text, err := json.Marshal(map[string]exe.Event{ev.Host: ev})
	if err != nil {
		return nil, err
	}
	slot.Store(&eventLine{jid: jid, ev: ev, text: text})
	return text, nil
}

// sameEvent reports whether a and b encode alike for certain: equal
// fields and output, and the same Facts and Extra maps (not equal ones:
// comparing maps would cost what encoding does). The followers of one
// store's event get the same maps; others miss and encode.
func sameEvent(a, b exe.Event) bool {
	if a.Seq != b.Seq || a.Host != b.Host || a.Status != b.Status || a.Name != b.Name ||
		a.Msg != b.Msg || a.Truncated != b.Truncated || !sameMap(a.Facts, b.Facts) || !sameMap(a.Extra, b.Extra) {
		return false
	}
	if a.Exec == nil || b.Exec == nil {
		return a.Exec == b.Exec
	}
	return *a.Exec == *b.Exec
}

// sameMap reports whether a and b are both nil or the very same map.
func sameMap(a, b map[string]any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
