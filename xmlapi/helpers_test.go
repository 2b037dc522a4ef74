package xmlapi_test

import (
	"encoding/xml"

	"github.com/emailcrm/emailcrm/xmlapi"
)

func xmlName(local string) xml.Name { return xml.Name{Space: xmlapi.Namespace, Local: local} }
