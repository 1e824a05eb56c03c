namespace IsolateGrains;

/// <summary>
/// Lambdas the image builder runs inside the sandbox before capturing it, so that the path a user's
/// first call takes (asking the host for an assembly, loading it from bytes, resolving a closure type,
/// building its runner, serializing captured values) is already transformed by the interpreter in
/// every new sandbox. It lives here because this assembly is the one "user" assembly the builder has.
/// </summary>
internal static class ImageWarmupProbe
{
    /// <summary>A lambda with a captured value, like most user lambdas.</summary>
    public static Func<int> WithCapture(int value) => () => value + 1;

    /// <summary>A lambda returning a user type.</summary>
    public static Func<ProbeResult> WithUserType(string name) => () => new ProbeResult(name, name.Length, [1, 2, 3]);

    /// <summary>A lambda with no result.</summary>
    public static Action WithoutResult(int value) => () => ProbeState.Value = value;

    /// <summary>A lambda that throws, for the path a guest exception takes.</summary>
    public static Func<int> Throwing(int value) => () => value > 0 ? throw new InvalidOperationException("probe " + value) : value;

    /// <summary>The one host callback the image builder answers (with its argument plus one).</summary>
    public const string Callback = "isolategrains-image-warmup";

    /// <summary>A lambda that calls the host, for the callback path.</summary>
    public static Func<int> CallingHost(int value) => () => DotNetIsolatorHost.Invoke<int>(Callback, value);

    /// <summary>A user-like stateful object, for the isolated-object paths.</summary>
    public sealed class Counter(int start)
    {
        private int _total = start;

        /// <summary>Adds <paramref name="value"/> and returns the total.</summary>
        public int Add(int value) => _total += value;
    }

    /// <summary>A user-like record.</summary>
    public sealed record ProbeResult(string Name, int Length, List<int> Items);

    private static class ProbeState
    {
        public static int Value;
    }
}
