package pluginrpc

import (
	"errors"
	"io"

	"github.com/0ops/exed/internal/pluginpb"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

// OperateStream runs the operations the host sends on the stream one
// after another, each as Operate runs it (same Cancel registry, same
// context: the stream's), and ends each with an OperateEnd carrying the
// status Operate would have ended with. It returns when the host ends the
// stream (or goes away); an operation under way is cancelled with it.
func (s *ExecutorServer) OperateStream(stream pluginpb.Executor_OperateStreamServer) error {
	// One message and wrapper for all the stream's events: Send marshals
	// before it returns, and the operation's sender sends one at a time.
	ev := &pluginpb.OperateStreamMessage_Event{}
	msg := &pluginpb.OperateStreamMessage{Message: ev}
	send := func(e *pluginpb.Event) error {
		ev.Event = e
		return stream.Send(msg)
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		end := endToPB(toStatus(s.perform(stream.Context(), req, send)))
		if err := stream.Send(&pluginpb.OperateStreamMessage{Message: &pluginpb.OperateStreamMessage_End{End: end}}); err != nil {
			return err
		}
	}
}

// endToPB is the OperateEnd of an operation that returned err (a status
// error, or nil).
func endToPB(err error) *pluginpb.OperateEnd {
	st := status.Convert(err).Proto()
	end := &pluginpb.OperateEnd{Code: st.GetCode(), Message: st.GetMessage()}
	for _, d := range st.GetDetails() {
		end.Details = append(end.Details, &pluginpb.StatusDetail{TypeUrl: d.GetTypeUrl(), Value: d.GetValue()})
	}
	return end
}

// endFromPB is the error an Operate stream would have ended with: nil
// (io.EOF) for code OK, else the same status error.
func endFromPB(end *pluginpb.OperateEnd) error {
	if codes.Code(end.GetCode()) == codes.OK {
		return io.EOF
	}
	st := &spb.Status{Code: end.GetCode(), Message: end.GetMessage()}
	for _, d := range end.GetDetails() {
		st.Details = append(st.Details, &anypb.Any{TypeUrl: d.GetTypeUrl(), Value: d.GetValue()})
	}
	return status.ErrorProto(st)
}
