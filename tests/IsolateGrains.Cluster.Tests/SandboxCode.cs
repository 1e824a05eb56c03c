namespace IsolateGrains.Cluster.Tests;

/// <summary>
/// The lambdas the tests send to isolate grains. They live in a class of their own: a lambda written in a test
/// class compiles into a closure nested in that class, and loading it in a sandbox would load the test class
/// and xunit with it (slower first calls in 300 fresh sandboxes, for nothing).
/// </summary>
public static class SandboxCode
{
    /// <summary>Increments the sandbox's counter; returns the new value.</summary>
    public static Func<int> Increment() => () => ++Counter.Value;

    /// <summary>Sets the sandbox's counter (safe to retry); returns it.</summary>
    public static Func<int> Set(int value) => () => Counter.Value = value;

    /// <summary>Reads the sandbox's counter (safe to retry).</summary>
    public static Func<int> Read() => () => Counter.Value;

    /// <summary>
    /// Increments the counter and appends <paramref name="sequence"/> (the caller's attempt number) to the
    /// sandbox's journal; returns the new counter value. The journal tells exactly which attempts were applied,
    /// and in which order, even those whose reply never arrived.
    /// </summary>
    public static Func<int> Record(int sequence) => () => Journal.Record(sequence);

    /// <summary>The sandbox's journal (safe to retry).</summary>
    public static Func<int[]> ReadJournal() => () => Journal.Entries();

    /// <summary>A static field: each sandbox has its own, kept in the grain's snapshot.</summary>
    public static class Counter
    {
        /// <summary>The value.</summary>
        public static int Value;
    }

    /// <summary>The attempts applied in a sandbox, in order.</summary>
    public static class Journal
    {
        private static readonly List<int> Applied = [];

        /// <summary>Applies one attempt.</summary>
        public static int Record(int sequence)
        {
            Applied.Add(sequence);
            return ++Counter.Value;
        }

        /// <summary>A copy of the applied attempts, in order.</summary>
        public static int[] Entries() => [.. Applied];
    }
}
