package kafka

import (
	"fmt"
	"strings"

	"github.com/flowdex/flowdex/aggregate/document"
)

// variables are the $names of pmacct's kafka_topic and kafka_partition_key
// that flowdex has a primitive for, and the pmacct JSON key each reads.
var variables = map[string]string{
	"peer_src_ip": "peer_ip_src",
	"src_host":    "ip_src",
	"dst_host":    "ip_dst",
	"src_port":    "port_src",
	"dst_port":    "port_dst",
	"proto":       "ip_proto",
	"in_iface":    "iface_in",
	"tag":         "tag", // the input's pre_tag_map, when the pipeline aggregates on tag
	"tag2":        "tag2",
}

// deferred are pmacct's variables of what flowdex does not have yet.
var deferred = map[string]bool{"post_tag": true, "post_tag2": true}

// part of a pattern: literal text, or the value of a document's key.
type part struct {
	text string
	key  string // "": text
}

// pattern is a kafka_topic or kafka_partition_key: text with $variables.
type pattern []part

// parsePattern reads s; an unknown or deferred variable is an error.
func parsePattern(s string) (pattern, error) {
	var p pattern
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			if s != "" {
				p = append(p, part{text: s})
			}
			return p, nil
		}
		if i > 0 {
			p = append(p, part{text: s[:i]})
		}
		s = s[i+1:]
		n := 0
		for n < len(s) && (s[n] == '_' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= '0' && s[n] <= '9') {
			n++
		}
		name := s[:n]
		key, ok := variables[name]
		switch {
		case deferred[name]:
			return nil, fmt.Errorf("$%s: pmacct's post_tag, which flowdex does not have yet (expected one of %s)", name, variableList())
		case !ok:
			return nil, fmt.Errorf("unknown variable $%s (expected one of %s)", name, variableList())
		}
		p = append(p, part{key: key})
		s = s[n:]
	}
}

func variableList() string {
	return "$peer_src_ip, $src_host, $dst_host, $src_port, $dst_port, $proto, $in_iface, $tag, $tag2"
}

// static reports whether p has no variable, and its text.
func (p pattern) static() (string, bool) {
	var b strings.Builder
	for _, x := range p {
		if x.key != "" {
			return "", false
		}
		b.WriteString(x.text)
	}
	return b.String(), true
}

// appendTo appends p expanded for doc to dst: a variable whose key the
// document lacks expands to nothing; a value is written as the print
// output writes it, without the quotes of a string.
func (p pattern) appendTo(dst []byte, doc *document.Document) []byte {
	for _, x := range p {
		if x.key == "" {
			dst = append(dst, x.text...)
			continue
		}
		v, ok := doc.Get(x.key)
		if !ok {
			continue
		}
		switch v.Kind {
		case document.String, document.Number, document.Raw:
			dst = append(dst, v.Bytes...)
		case document.Null:
		default:
			dst = document.AppendValue(dst, v)
		}
	}
	return dst
}
