package executor

import "context"

// OperateStreams tells how many OperateStream streams c opened to its
// current plugin process, and how many it keeps open between operations.
func OperateStreams(c *Client) (opened int64, idle int) {
	x, err := c.get(context.Background())
	if err != nil || x.Streams == nil {
		return 0, 0
	}
	return x.Streams.Opened(), x.Streams.Idle()
}
