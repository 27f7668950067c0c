module github.com/sesame-knock/sesame

go 1.26
