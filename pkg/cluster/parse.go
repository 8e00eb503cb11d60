package cluster

import yaml2 "go.yaml.in/yaml/v2"

// parsed is a document's parse; ok is false when yaml2.Unmarshal refuses the document.
type parsed struct {
	y  interface{}
	ok bool
}

// parse parses one document as yaml2.Unmarshal does.
func parse(doc []byte) parsed {
	var y interface{}
	err := yaml2.Unmarshal(doc, &y)
	return parsed{y: y, ok: err == nil}
}
