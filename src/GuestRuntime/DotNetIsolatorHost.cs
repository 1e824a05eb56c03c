namespace IsolateGrains;

/// <summary>
/// The guest's view of its host. Code running inside a sandbox uses it to learn where it runs; host
/// callbacks (<c>Invoke</c>) arrive with the callbacks feature.
/// </summary>
public static class DotNetIsolatorHost
{
    /// <summary>True when this code runs inside an IsolateGrains sandbox (the Mono WebAssembly runtime).</summary>
    public static bool IsInSandbox => OperatingSystem.IsBrowser();
}
