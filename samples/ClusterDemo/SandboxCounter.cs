namespace ClusterDemo;

/// <summary>
/// State that lives in a grain's sandbox. Each sandbox has its own copy of this static field, and the grain's
/// snapshot keeps it across deactivation, silo loss and migration. The client's copy stays 0.
/// </summary>
public static class SandboxCounter
{
    /// <summary>How many demo calls this sandbox has run.</summary>
    public static int Value;
}
