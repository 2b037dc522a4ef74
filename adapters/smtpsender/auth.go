package smtpsender

import "github.com/emersion/go-sasl"

// xoauth2 is the SASL XOAUTH2 mechanism (Google, Microsoft): the user name
// and a bearer token in one initial response.
type xoauth2 struct {
	user, token string
}

var _ sasl.Client = (*xoauth2)(nil)

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next answers the server's error challenge (a JSON status) with an empty
// response, after which the server fails the command with the reason.
func (x *xoauth2) Next([]byte) ([]byte, error) { return []byte{}, nil }
