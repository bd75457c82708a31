package seata

import gxtime "github.com/dubbogo/gost/time"

// seata-go's codec packages import its log package, which imports
// dubbo-getty (for getty.SetLogger), whose init starts gost's default timer
// wheel: a goroutine on a 10 ms ticker in every process that links this
// package, that is every strata process (the proxy included). Only getty
// sessions use the wheel and nothing here opens one: stopped, it no longer
// wakes the process 100 times a second (an idle proxy at GOMAXPROCS=1 went
// from about 290 to about 110 context switches a second, and every
// scheduling round of a busy one stops finding its timer due).
func init() { gxtime.GetDefaultTimerWheel().Stop() }
