package xmlapi_test

import (
	"strings"
	"testing"

	"github.com/emailcrm/emailcrm/xmlapi"
)

// FuzzParseForm checks that the webform parser never panics, stays within
// its limits and returns either a form with a template ID or an error of
// the documented kinds.
func FuzzParseForm(f *testing.F) {
	for _, s := range []string{
		contactUs,
		`<?xml version="1.0"?><WEBFORM><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID></WEBFORM>`,
		`<A><B><C><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID></C><C>1</C></B><secret>s</secret></A>`,
		`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><A>&e;</A>`,
		`<A><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID><Q>&amp;&#x41;&lt;</Q></A>trailing`,
		`<a:F xmlns:a="urn:x"><a:WEBFORM_TEMPL_ID>X</a:WEBFORM_TEMPL_ID></a:F>`,
		`<A><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID><![CDATA[<b>]]><!-- c --><?pi x?></A>`,
	} {
		f.Add(s)
	}
	lim := &xmlapi.Limits{MaxBytes: 64 << 10, MaxDepth: 8, MaxTokens: 2000}
	f.Fuzz(func(t *testing.T, body string) {
		_ = xmlapi.IsWebform(body)
		form, err := xmlapi.ParseForm(strings.NewReader(body), lim)
		if err != nil {
			if form != nil {
				t.Fatalf("form and error: %v", err)
			}
			return
		}
		if form.TemplateID == "" || form.Root == "" {
			t.Fatalf("form without template ID or root: %+v", form)
		}
		var depth func(fs xmlapi.FormFields) int
		depth = func(fs xmlapi.FormFields) int {
			d := 0
			for _, f := range fs {
				if k := depth(f.Fields) + 1; k > d {
					d = k
				}
			}
			return d
		}
		if d := depth(form.Fields); d >= lim.MaxDepth {
			t.Fatalf("fields nested %d deep, limit %d", d, lim.MaxDepth)
		}
		_ = form.Fields.Flatten()
	})
}
