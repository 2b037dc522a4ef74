package sqlstore

import "github.com/emailcrm/emailcrm/mailcase"

// SetSLAClaimHook makes the claims of s, a store of this package, call f
// between the read of their candidates and their updates.
func SetSLAClaimHook(s *mailcase.Store, f func()) { s.Driver().(*store).slaClaimHook = f }
