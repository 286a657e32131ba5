package ike

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/strongswan/govici/vici"
)

// fakeCharon is an in-process vici server on a unix socket, for tests of
// erlab's side of the protocol without charon. It speaks the wire format of
// strongSwan's vici README: packets of a 32-bit length, a type, a name for
// requests and events, and a message. Each command goes to handle, which
// returns the events to stream before the reply (list-sas) and the reply.
type fakeCharon struct {
	t      *testing.T
	path   string
	ln     net.Listener
	handle func(cmd string, req *vici.Message) (events []*vici.Message, reply *vici.Message)

	mu       sync.Mutex
	calls    []fakeCall
	sessions map[*fakeSession]bool
}

// fakeCall is one command the fake received.
type fakeCall struct {
	cmd string
	req *vici.Message
}

type fakeSession struct {
	mu         sync.Mutex // serializes writes
	c          net.Conn
	registered map[string]bool
}

// Packet and element types of the vici wire format.
const (
	vCmdRequest, vCmdResponse, vCmdUnknown, vEventRegister, vEventUnregister, vEventConfirm, vEventUnknown, vEvent = 0, 1, 2, 3, 4, 5, 6, 7

	vSectionStart, vSectionEnd, vKeyValue, vListStart, vListItem, vListEnd = 1, 2, 3, 4, 5, 6
)

// newFakeCharon serves vici in dir/charon.vici (where filesOf puts a
// node's socket when dir is its IKEDir) until the test ends.
func newFakeCharon(t *testing.T, dir string, handle func(cmd string, req *vici.Message) ([]*vici.Message, *vici.Message)) *fakeCharon {
	t.Helper()
	f := &fakeCharon{t: t, path: filepath.Join(dir, "charon.vici"), handle: handle, sessions: map[*fakeSession]bool{}}
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for s := range f.sessions {
			s.c.Close()
		}
		f.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s := &fakeSession{c: c, registered: map[string]bool{}}
			f.mu.Lock()
			f.sessions[s] = true
			f.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.serve(s)
				f.mu.Lock()
				delete(f.sessions, s)
				f.mu.Unlock()
				c.Close()
			}()
		}
	}()
	return f
}

// Calls returns the commands received so far, in order.
func (f *fakeCharon) Calls() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Commands returns the names of the commands received so far.
func (f *fakeCharon) Commands() []string {
	var out []string
	for _, c := range f.Calls() {
		out = append(out, c.cmd)
	}
	return out
}

// Emit sends an event to every session registered for it, as charon does
// when an SA comes up or is rekeyed.
func (f *fakeCharon) Emit(name string, m *vici.Message) {
	f.mu.Lock()
	var to []*fakeSession
	for s := range f.sessions {
		s.mu.Lock()
		if s.registered[name] {
			to = append(to, s)
		}
		s.mu.Unlock()
	}
	f.mu.Unlock()
	for _, s := range to {
		s.write(vEvent, name, m)
	}
}

// Subscribers counts the sessions registered for an event.
func (f *fakeCharon) Subscribers(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for s := range f.sessions {
		s.mu.Lock()
		if s.registered[name] {
			n++
		}
		s.mu.Unlock()
	}
	return n
}

func (f *fakeCharon) serve(s *fakeSession) {
	r := bufio.NewReader(s.c)
	for {
		var n uint32
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			return
		}
		if len(p) < 2 || int(p[1]) > len(p)-2 {
			f.t.Errorf("fake charon: short packet % x", p)
			return
		}
		typ, name, body := p[0], string(p[2:2+int(p[1])]), p[2+int(p[1]):]
		switch typ {
		case vEventRegister, vEventUnregister:
			s.mu.Lock()
			s.registered[name] = typ == vEventRegister
			s.mu.Unlock()
			s.write(vEventConfirm, "", nil)
		case vCmdRequest:
			req, err := decodeMessage(body)
			if err != nil {
				f.t.Errorf("fake charon: %s: %v", name, err)
				return
			}
			f.mu.Lock()
			f.calls = append(f.calls, fakeCall{name, req})
			f.mu.Unlock()
			events, reply := f.handle(name, req)
			if reply == nil {
				s.write(vCmdUnknown, "", nil)
				continue
			}
			// Everything in one write, as charon's socket may deliver
			// it: the events and the reply arrive together.
			var buf bytes.Buffer
			for _, ev := range events {
				buf.Write(packet(vEvent, streamEvent(name), ev))
			}
			buf.Write(packet(vCmdResponse, "", reply))
			s.mu.Lock()
			s.c.Write(buf.Bytes())
			s.mu.Unlock()
		default:
			f.t.Errorf("fake charon: packet type %d", typ)
			return
		}
	}
}

// streamEvent names the events a streaming command sends.
func streamEvent(cmd string) string {
	if cmd == "list-sas" {
		return "list-sa"
	}
	return cmd
}

func (s *fakeSession) write(typ byte, name string, m *vici.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.Write(packet(typ, name, m))
}

func packet(typ byte, name string, m *vici.Message) []byte {
	var b bytes.Buffer
	b.WriteByte(typ)
	if typ == vCmdRequest || typ == vEventRegister || typ == vEventUnregister || typ == vEvent {
		b.WriteByte(byte(len(name)))
		b.WriteString(name)
	}
	if m != nil {
		encodeMessage(&b, m)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(b.Len()))
	return append(out, b.Bytes()...)
}

func encodeMessage(b *bytes.Buffer, m *vici.Message) {
	key := func(t byte, k string) { b.WriteByte(t); b.WriteByte(byte(len(k))); b.WriteString(k) }
	val := func(v string) { b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(v)))); b.WriteString(v) }
	for _, k := range m.Keys() {
		switch v := m.Get(k).(type) {
		case string:
			key(vKeyValue, k)
			val(v)
		case []string:
			key(vListStart, k)
			for _, item := range v {
				b.WriteByte(vListItem)
				val(item)
			}
			b.WriteByte(vListEnd)
		case *vici.Message:
			key(vSectionStart, k)
			encodeMessage(b, v)
			b.WriteByte(vSectionEnd)
		}
	}
}

// decodeMessage reads a request's message into a vici.Message.
func decodeMessage(p []byte) (*vici.Message, error) {
	stack := []*vici.Message{vici.NewMessage()}
	var list []string
	var listKey string
	inList := false
	r := bytes.NewReader(p)
	readKey := func() (string, error) {
		n, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		k := make([]byte, n)
		_, err = io.ReadFull(r, k)
		return string(k), err
	}
	readVal := func() (string, error) {
		var n uint16
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return "", err
		}
		v := make([]byte, n)
		_, err := io.ReadFull(r, v)
		return string(v), err
	}
	for r.Len() > 0 {
		t, _ := r.ReadByte()
		cur := stack[len(stack)-1]
		switch {
		case t == vSectionStart && !inList:
			k, err := readKey()
			if err != nil {
				return nil, err
			}
			sub := vici.NewMessage()
			if err := cur.Set(k, sub); err != nil {
				return nil, err
			}
			stack = append(stack, sub)
		case t == vSectionEnd && !inList && len(stack) > 1:
			stack = stack[:len(stack)-1]
		case t == vKeyValue && !inList:
			k, err := readKey()
			if err != nil {
				return nil, err
			}
			v, err := readVal()
			if err != nil {
				return nil, err
			}
			if err := cur.Set(k, v); err != nil {
				return nil, err
			}
		case t == vListStart && !inList:
			k, err := readKey()
			if err != nil {
				return nil, err
			}
			inList, listKey, list = true, k, []string{}
		case t == vListItem && inList:
			v, err := readVal()
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		case t == vListEnd && inList:
			inList = false
			if err := cur.Set(listKey, list); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("element type %d out of place", t)
		}
	}
	if len(stack) != 1 || inList {
		return nil, errors.New("message ends inside a section or list")
	}
	return stack[0], nil
}

// msg builds a vici message from keys and values, in order.
func msg(kv ...any) *vici.Message {
	m := vici.NewMessage()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := m.Set(kv[i].(string), kv[i+1]); err != nil {
			panic(err)
		}
	}
	return m
}
