using System.Runtime.CompilerServices;

// The host library speaks the same wire protocol; the tests check it.
[assembly: InternalsVisibleTo("IsolateGrains")]
[assembly: InternalsVisibleTo("IsolateGrains.Interfaces")]
[assembly: InternalsVisibleTo("IsolateGrains.Tests")]
[assembly: InternalsVisibleTo("IsolateGrains.Benchmarks")]
