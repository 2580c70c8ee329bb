package containerd

import (
	"context"
	"fmt"

	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	"google.golang.org/protobuf/types/known/anypb"
)

// Watch implements workload.Runtime: containerd's container events
// (create, update, delete) in every namespace. Namespaces are listed first,
// so that an unreachable containerd is an error here rather than at the
// first Recv.
func (r *Runtime) Watch(ctx context.Context, connected func(), changed func(string)) error {
	if _, err := r.namespaceList(ctx, true); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := r.events.Subscribe(ctx, &eventsapi.SubscribeRequest{Filters: []string{`topic~="^/containers/"`}})
	if err != nil {
		return fmt.Errorf("containerd events at %s: %w", r.socket, err)
	}
	connected()
	for {
		env, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("containerd events at %s: %w", r.socket, err)
		}
		if id := eventContainer(env.GetEvent()); id != "" {
			changed(id)
		}
	}
}

// eventContainer is the id of the container an event is about, "" when it
// cannot be decoded.
func eventContainer(a *anypb.Any) string {
	if a == nil {
		return ""
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return ""
	}
	switch e := m.(type) {
	case interface{ GetContainerID() string }:
		return e.GetContainerID()
	case interface{ GetID() string }:
		return e.GetID()
	}
	return ""
}
