module kplrs.bench/peers/go

go 1.21
