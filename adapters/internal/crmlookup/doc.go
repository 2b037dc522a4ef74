// Package crmlookup holds what the CRM adapters (salesforce, dynamics)
// share about finding the CRM record a mail belongs to: lookup templates
// with {{variable}} substitution, the variables a mail offers, the
// single/multiple/none outcomes with their take-first/take-all policy, the
// lookup cache with its freshness window, and the push switches. Each
// adapter injects its query language as a Dialect (SOQL quoting for
// Salesforce, OData quoting for Dynamics); nothing here talks to a CRM.
package crmlookup
